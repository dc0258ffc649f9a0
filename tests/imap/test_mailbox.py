"""Every Mailbox operation, on both backends: a real Dovecot over IMAP, and a local Maildir++."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from dovecot import DovecotServer, ImapAccount

from triage.errors import AuthError, ConnectionLost, MailboxError, TLSError
from triage.mailbox.base import Mailbox
from triage.mailbox.imap import ImapMailbox
from triage.mailbox.maildir import MaildirMailbox


def make_message(n: int, *, body: str = "", sender: str = "sales@acme.example") -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Acme Sales <{sender}>"
    msg["To"] = "buyer@corp.example"
    msg["Subject"] = f"Order {n} confirmed"
    msg["Message-ID"] = f"<order-{n}@acme.example>"
    msg["Date"] = "Mon, 02 Nov 2026 09:00:00 +0000"
    msg.set_content(body or f"Your order {n} has shipped.\n")
    return msg.as_bytes()


EIGHT_BIT = (
    b"From: =?utf-8?q?J=C3=BCrgen?= <jurgen@lieferant.example>\r\n"
    b"To: buyer@corp.example\r\n"
    b"Subject: Rechnung f\xc3\xbcr M\xc3\xa4rz \xff\xfe broken\r\n"
    b"Message-ID: <eightbit@lieferant.example>\r\n"
    b"X-Broken-Header this line has no colon\r\n"
    b"\r\n"
    b"Gr\xfc\xdfe aus K\xf6ln (latin-1 bytes, no charset declared)\r\n"
)


def imap_mailbox(account: ImapAccount, *, poll_interval: float = 60.0) -> ImapMailbox:
    return ImapMailbox(
        account.host,
        account.user,
        lambda: account.password,
        port=account.port,
        security="plain",
        timeout=10,
        poll_interval=poll_interval,
    )


@pytest.fixture(params=["imap", "maildir"])
def mailbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Mailbox]:
    if request.param == "imap":
        box: Mailbox = imap_mailbox(request.getfixturevalue("imap_account"))
    else:
        box = MaildirMailbox(tmp_path / "Mail", create=True, poll_interval=0.05)
    with box:
        yield box


def seed(box: Mailbox, folder: str, messages: list[bytes]) -> list[int]:
    box.create_folder(folder)
    uids = [box.append(folder, m) for m in messages]
    assert all(u is not None for u in uids)
    return [u for u in uids if u is not None]


def flags_of(box: Mailbox, folder: str) -> dict[int, frozenset[str]]:
    box.select(folder)
    return {m.uid: m.flags for m in box.fetch(box.uids_above(0), max_bytes=16)}


# -- folders ------------------------------------------------------------------------------------


def test_list_folders_has_inbox_with_its_role(mailbox: Mailbox) -> None:
    folders = {f.name: f for f in mailbox.list_folders()}
    assert folders["INBOX"].role == "inbox"
    assert all(f.delimiter == "/" for f in folders.values())


def test_special_use_roles_over_imap(imap_account: ImapAccount) -> None:
    with imap_mailbox(imap_account) as box:
        roles = {f.name: f.role for f in box.list_folders()}
        assert {"SPECIAL-USE", "MOVE", "IDLE", "UIDPLUS"} <= box.capabilities
    assert roles["Sent"] == "sent"
    assert roles["Trash"] == "trash"
    assert roles["Junk"] == "junk"
    assert roles["Drafts"] == "drafts"


def test_usual_names_stand_in_for_special_use_only_where_the_server_has_none(
    imap_account: ImapAccount, dovecot: DovecotServer
) -> None:
    """A "Sent Items" folder is the sent folder on a server without SPECIAL-USE (the digest
    reads it); on a server with SPECIAL-USE only the server's flags count."""
    imap_account.server.seed(imap_account.user, "Sent Items", [])
    imap_account.server.seed(imap_account.user, "Vendors/Spam Filters Inc", [])
    with imap_mailbox(imap_account) as box:
        roles = {f.name: f.role for f in box.list_folders()}
    assert roles["Sent Items"] is None and roles["Sent"] == "sent"
    with DovecotServer(capabilities_without=("SPECIAL-USE",)) as plain:
        account = plain.new_account("names")
        plain.seed(account.user, "Sent Items", [])
        plain.seed(account.user, "Deleted Items", [])
        plain.seed(account.user, "Vendors/Spam Filters Inc", [])
        with imap_mailbox(account) as box:
            assert "SPECIAL-USE" not in box.capabilities
            roles = {f.name: f.role for f in box.list_folders()}
    assert roles["Sent Items"] == "sent" and roles["Deleted Items"] == "trash"
    assert roles["Vendors/Spam Filters Inc"] is None  # the whole name, not a part of it


def test_create_nested_and_non_ascii_folders(mailbox: Mailbox) -> None:
    names = ["Vendors/Acme", "Vendors/Café Ünïcode", "Lieferanten/日本"]
    for name in names:
        mailbox.create_folder(name)
        mailbox.create_folder(name)  # a second time changes nothing and does not fail
    listed = {f.name for f in mailbox.list_folders()}
    assert set(names) <= listed
    assert {"Vendors", "Lieferanten"} <= listed
    state = mailbox.select("Vendors/Café Ünïcode")
    assert state.exists == 0


def test_non_ascii_name_is_modified_utf7_on_the_server(imap_account: ImapAccount) -> None:
    with imap_mailbox(imap_account) as box:
        box.create_folder("Vendors/Café")
    path = imap_account.server.maildir_path(imap_account.user, "Vendors/Café")
    assert path.name == ".Vendors.Caf&AOk-"
    assert path.is_dir()


def test_select_missing_folder_is_a_clear_error(mailbox: Mailbox) -> None:
    with pytest.raises(MailboxError, match="Nope"):
        mailbox.select("Vendors/Nope")


# -- reading ------------------------------------------------------------------------------------


def test_select_and_uids_above(mailbox: Mailbox) -> None:
    uids = seed(mailbox, "INBOX", [make_message(i) for i in range(5)])
    state = mailbox.select("INBOX")
    assert state.exists == 5
    assert state.uidnext > max(uids)
    assert state.uidvalidity > 0
    assert mailbox.uids_above(0) == uids
    assert mailbox.uids_above(uids[2]) == uids[3:]
    # "n:*" with n above the highest UID must not return the highest message.
    assert mailbox.uids_above(uids[-1]) == []
    assert mailbox.uids_above(uids[-1] + 100) == []
    # The same folder selected again keeps its UIDVALIDITY.
    assert mailbox.select("INBOX").uidvalidity == state.uidvalidity


def test_fetch_caps_the_body_and_never_sets_seen(mailbox: Mailbox) -> None:
    big = make_message(1, body="x" * 50_000 + "\n")
    small = make_message(2)
    uids = seed(mailbox, "INBOX", [big, small])
    mailbox.select("INBOX")
    fetched = {m.uid: m for m in mailbox.fetch(uids, max_bytes=4096, batch_size=1)}
    assert set(fetched) == set(uids)
    first, second = fetched[uids[0]], fetched[uids[1]]
    assert first.truncated and not second.truncated
    assert first.size >= len(big) - 10  # the server may normalise line endings
    assert b"Subject: Order 1 confirmed" in first.data
    header_end = first.data.find(b"\r\n\r\n") if b"\r\n\r\n" in first.data else -1
    if header_end < 0:
        header_end = first.data.find(b"\n\n")
    assert 4096 <= len(first.data) - header_end <= 4096 + 4
    assert b"has shipped" in second.data
    assert not first.seen and not second.seen
    assert all(not f for f in flags_of(mailbox, "INBOX").values())


def test_fetch_skips_vanished_uids_and_batches(mailbox: Mailbox) -> None:
    uids = seed(mailbox, "INBOX", [make_message(i) for i in range(7)])
    mailbox.select("INBOX")
    got = [m.uid for m in mailbox.fetch([*uids, max(uids) + 50], max_bytes=1000, batch_size=3)]
    assert got == uids


def test_eight_bit_and_broken_headers_survive(mailbox: Mailbox) -> None:
    [uid] = seed(mailbox, "INBOX", [EIGHT_BIT])
    mailbox.select("INBOX")
    [fetched] = list(mailbox.fetch([uid], max_bytes=10_000))
    assert b"Rechnung f\xc3\xbcr" in fetched.data
    assert b"K\xf6ln" in fetched.data
    assert mailbox.fetch_message_ids([uid]) == {uid: "<eightbit@lieferant.example>"}


def test_message_ids_and_search(mailbox: Mailbox) -> None:
    no_id = b"From: a@b.example\r\nSubject: no id\r\n\r\nbody\r\n"
    uids = seed(mailbox, "INBOX", [make_message(1), make_message(12), no_id])
    mailbox.select("INBOX")
    ids = mailbox.fetch_message_ids(uids)
    assert ids == {
        uids[0]: "<order-1@acme.example>",
        uids[1]: "<order-12@acme.example>",
        uids[2]: "",
    }
    # Exact match only: "order-1@" is a substring of nothing else here but "order-1" is.
    assert mailbox.search_message_id("<order-1@acme.example>") == [uids[0]]
    assert mailbox.search_message_id("<order-1") == []
    assert mailbox.search_message_id("") == []


# -- writing ------------------------------------------------------------------------------------


def test_move_moves_exactly_the_given_uids(mailbox: Mailbox) -> None:
    uids = seed(mailbox, "INBOX", [make_message(i) for i in range(6)])
    mailbox.create_folder("Vendors/Acme")
    mailbox.select("INBOX")
    result = mailbox.move([uids[1], uids[3], uids[4]], "Vendors/Acme")
    assert result.moved == 3
    assert sorted(result.new_uids) == [uids[1], uids[3], uids[4]]
    assert mailbox.uids_above(0) == [uids[0], uids[2], uids[5]]
    mailbox.select("Vendors/Acme")
    moved = mailbox.fetch_message_ids(mailbox.uids_above(0))
    assert sorted(moved.values()) == [
        "<order-1@acme.example>",
        "<order-3@acme.example>",
        "<order-4@acme.example>",
    ]
    assert sorted(moved) == sorted(result.new_uids.values())
    assert all(not f for f in flags_of(mailbox, "Vendors/Acme").values())
    mailbox.select("INBOX")
    assert mailbox.move([], "Vendors/Acme").moved == 0


def test_move_keeps_seen_state(mailbox: Mailbox) -> None:
    mailbox.create_folder("Vendors/Acme")
    seen = mailbox.append("INBOX", make_message(1), flags=["\\Seen"])
    unseen = mailbox.append("INBOX", make_message(2))
    assert seen is not None and unseen is not None
    mailbox.select("INBOX")
    mailbox.move([seen, unseen], "Vendors/Acme")
    flags = flags_of(mailbox, "Vendors/Acme")
    ids = mailbox.fetch_message_ids(list(flags))
    by_id = {ids[uid]: f for uid, f in flags.items()}
    assert by_id["<order-1@acme.example>"] == frozenset({"\\Seen"})
    assert by_id["<order-2@acme.example>"] == frozenset()


def test_append_with_flags_returns_the_uid(mailbox: Mailbox) -> None:
    mailbox.create_folder("Reports")
    uid = mailbox.append("Reports", make_message(9), flags=["\\Seen", "\\Flagged"])
    assert uid is not None
    assert flags_of(mailbox, "Reports") == {uid: frozenset({"\\Seen", "\\Flagged"})}


def test_move_without_move_capability(dovecot_nomove: DovecotServer) -> None:
    with imap_mailbox(dovecot_nomove.new_account("nomove")) as box:
        assert "MOVE" not in box.capabilities and "UIDPLUS" in box.capabilities
        uids = seed(box, "INBOX", [make_message(i) for i in range(4)])
        box.create_folder("Vendors/Acme")
        box.select("INBOX")
        # The buyer deleted a message without expunging it; a folder-wide EXPUNGE would lose it.
        box.client.add_flags([uids[0]], [b"\\Deleted"])
        result = box.move([uids[2], uids[3]], "Vendors/Acme")
        assert result.moved == 2
        assert box.uids_above(0) == [uids[0], uids[1]]
        box.select("Vendors/Acme")
        assert sorted(box.fetch_message_ids(box.uids_above(0)).values()) == [
            "<order-2@acme.example>",
            "<order-3@acme.example>",
        ]
        assert all("\\Deleted" not in f for f in flags_of(box, "Vendors/Acme").values())


# -- waiting ------------------------------------------------------------------------------------


def deliver_later(deliver: Callable[[], object], delay: float = 0.5) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(delay), deliver()), daemon=True)
    thread.start()
    return thread


def test_wait_times_out_when_nothing_happens(mailbox: Mailbox) -> None:
    mailbox.select("INBOX")
    started = time.monotonic()
    assert mailbox.wait(1.0) is False
    assert 0.9 <= time.monotonic() - started < 5


def test_wait_wakes_on_new_mail(mailbox: Mailbox, request: pytest.FixtureRequest) -> None:
    mailbox.select("INBOX")
    if isinstance(mailbox, ImapMailbox):
        other = imap_mailbox(request.getfixturevalue("imap_account"))
        other.connect()
        thread = deliver_later(lambda: other.append("INBOX", make_message(77)))
    else:
        assert isinstance(mailbox, MaildirMailbox)
        other_dir = MaildirMailbox(mailbox.root)
        thread = deliver_later(lambda: other_dir.append("INBOX", make_message(77)))
    started = time.monotonic()
    assert mailbox.wait(20) is True
    assert time.monotonic() - started < 10
    thread.join()
    assert len(mailbox.uids_above(0)) == 1


def test_wait_polls_without_idle(dovecot_noidle: DovecotServer) -> None:
    account = dovecot_noidle.new_account("noidle")
    with imap_mailbox(account, poll_interval=0.2) as box, imap_mailbox(account) as other:
        assert not box.has_idle
        box.select("INBOX")
        assert box.wait(0.5) is False
        deliver_later(lambda: other.append("INBOX", make_message(5)), delay=0.3)
        assert box.wait(10) is True


# -- login and transport --------------------------------------------------------------------------


def test_xoauth2_login(imap_account: ImapAccount) -> None:
    box = ImapMailbox(
        imap_account.host,
        imap_account.user,
        lambda: imap_account.oauth_token,
        port=imap_account.port,
        security="plain",
        oauth2=True,
    )
    with box:
        assert box.select("INBOX").exists == 0


def test_wrong_password_is_a_clear_auth_error(imap_account: ImapAccount) -> None:
    secret = "wrong-Secret-4711"
    box = ImapMailbox(
        imap_account.host,
        imap_account.user,
        lambda: secret,
        port=imap_account.port,
        security="plain",
    )
    with pytest.raises(AuthError) as info:
        box.connect()
    text = str(info.value)
    assert "login as" in text and imap_account.user in text
    assert "password" in text
    assert secret not in text
    assert not info.value.retryable


def test_certificate_verification_failure(dovecot_tls: DovecotServer) -> None:
    account = dovecot_tls.new_account("tls")
    box = ImapMailbox(
        account.host,
        account.user,
        lambda: account.password,
        port=dovecot_tls.imaps_port,
        security="tls",
    )
    with pytest.raises(TLSError, match=r"certificate was rejected.*ca_file"):
        box.connect()


def test_tls_with_ca_file_and_starttls(dovecot_tls: DovecotServer) -> None:
    account = dovecot_tls.new_account("tls")
    cert = Path(dovecot_tls.cert_file)
    for port, security in ((dovecot_tls.imaps_port, "tls"), (dovecot_tls.port, "starttls")):
        box = ImapMailbox(
            "localhost",
            account.user,
            lambda: account.password,
            port=port,
            security=security,
            ca_file=cert,
        )
        with box:
            assert box.select("INBOX").exists == 0


def test_starttls_certificate_failure(dovecot_tls: DovecotServer) -> None:
    box = ImapMailbox("localhost", "x", lambda: "y", port=dovecot_tls.port, security="starttls")
    with pytest.raises(TLSError):
        box.connect()


def test_plaintext_refused_off_loopback_without_opt_in() -> None:
    box = ImapMailbox("imap.example.com", "u", lambda: "p", security="plain")
    with pytest.raises(MailboxError, match="allow_plaintext"):
        box.connect()


def test_allowed_plaintext_off_loopback_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    box = ImapMailbox(
        "no-such-host.invalid", "u", lambda: "secret-pw-1", security="plain", allow_plaintext=True
    )
    with pytest.raises(MailboxError, match="host not found"):
        box.connect()
    assert "password is sent unencrypted" in caplog.text
    assert "secret-pw-1" not in caplog.text


def test_refused_connection_is_retryable(unused_tcp_port: int) -> None:
    box = ImapMailbox("127.0.0.1", "u", lambda: "p", port=unused_tcp_port, security="plain")
    with pytest.raises(ConnectionLost) as info:
        box.connect()
    assert info.value.retryable
    assert "connection refused" in str(info.value)


def test_lost_connection_raises_retryable_error_and_reconnects(
    imap_account: ImapAccount,
) -> None:
    with imap_mailbox(imap_account) as box:
        box.select("INBOX")
        imap_account.server.kick(imap_account.user)  # the server drops the session
        with pytest.raises(ConnectionLost) as info:
            box.uids_above(0)
        assert info.value.retryable
        box.connect()
        assert box.select("INBOX").exists == 0
        box.client.socket().shutdown(socket.SHUT_RDWR)  # the network drops under us
        with pytest.raises(ConnectionLost):
            box.uids_above(0)


def test_server_restart_during_idle_is_a_lost_connection() -> None:
    # A private server of its own: restarting the shared one would disturb other tests.
    with DovecotServer() as server:
        account = server.new_account("restart")
        with imap_mailbox(account) as box:
            box.select("INBOX")
            restart = threading.Thread(target=lambda: (time.sleep(0.5), server.restart()))
            restart.start()
            with pytest.raises(ConnectionLost):
                box.wait(30)
            restart.join()
            box.connect()
            assert box.select("INBOX").exists == 0


@pytest.fixture
def unused_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

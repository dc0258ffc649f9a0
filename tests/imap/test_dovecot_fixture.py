"""Tests of the test servers themselves (tests/dovecot.py, tests/conftest.py), with imapclient.

They pin down the Dovecot behaviour the rest of the suite relies on: logins, folders, TLS,
advertised capabilities, seeded mail, users added at runtime, restarts.
"""

from __future__ import annotations

import dataclasses
import ssl
import time

import pytest
from dovecot import (
    DOVECOT_CAPABILITIES,
    SPECIAL_FOLDERS,
    DovecotServer,
    ImapAccount,
)
from imapclient import IMAPClient
from imapclient.exceptions import LoginError


def connect(account: ImapAccount) -> IMAPClient:
    """A logged-in plain-IMAP client for `account`."""
    client = IMAPClient(account.host, account.port, ssl=False, timeout=10)
    client.login(account.user, account.password)
    return client


def message(i: int, *, crlf: bool = True) -> bytes:
    """A small distinct message; `crlf=False` gives bare LF line ends, as mail on disk often has."""
    nl = "\r\n" if crlf else "\n"
    lines = [
        f"From: Vendor {i} <v{i}@example.com>",
        "To: buyer@example.org",
        f"Subject: message {i}",
        f"Message-ID: <m{i}@example.com>",
        "",
        "body " + "x" * (i % 97),
        "",
    ]
    return nl.join(lines).encode()


def crlf_size(msg: bytes) -> int:
    """RFC822.SIZE as IMAP reports it: the size with CRLF line ends."""
    return len(msg.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


def caps(client: IMAPClient) -> set[str]:
    """The capabilities the client sees now (after login: those sent with the OK)."""
    return {c.decode().upper() for c in client.capabilities()}


# -- logins --------------------------------------------------------------------------------


def test_imap_account_is_fresh_and_frozen(
    imap_account: ImapAccount, dovecot: DovecotServer
) -> None:
    assert imap_account.server is dovecot
    assert imap_account.user in dovecot.users
    assert (imap_account.host, imap_account.port) == ("127.0.0.1", dovecot.port)
    with pytest.raises(dataclasses.FrozenInstanceError):
        imap_account.user = "other"  # type: ignore[misc]


def test_login_works(imap_account: ImapAccount) -> None:
    client = connect(imap_account)
    info = client.select_folder("INBOX")
    assert info[b"EXISTS"] == 0
    client.logout()


def test_wrong_password_fails(imap_account: ImapAccount) -> None:
    failures = [(imap_account.user, "wrong"), ("nobody-here", "x"), (imap_account.user, "again")]
    for user, password in failures:
        client = IMAPClient(imap_account.host, imap_account.port, ssl=False, timeout=10)
        started = time.monotonic()
        with pytest.raises(LoginError):
            client.login(user, password)
        # Dovecot answers a failure after up to 0.5 s, but no 2 s delay nor growing penalty.
        assert time.monotonic() - started < 1.5
    # Nor does the next good login from the same IP wait out a penalty (2.3 default: 2-15 s).
    started = time.monotonic()
    connect(imap_account).logout()
    assert time.monotonic() - started < 1.0


def test_oauth2_login_checks_the_token(imap_account: ImapAccount) -> None:
    assert imap_account.oauth_token != imap_account.password
    client = IMAPClient(imap_account.host, imap_account.port, ssl=False, timeout=10)
    client.oauth2_login(imap_account.user, imap_account.oauth_token)
    assert client.select_folder("INBOX")[b"EXISTS"] == 0
    client.logout()
    client = IMAPClient(imap_account.host, imap_account.port, ssl=False, timeout=10)
    client.oauthbearer_login(imap_account.user, imap_account.oauth_token)
    client.logout()
    # The password is no token, and the token is no password.
    with pytest.raises(LoginError):
        IMAPClient(imap_account.host, imap_account.port, ssl=False).oauth2_login(
            imap_account.user, imap_account.password
        )
    with pytest.raises(LoginError):
        IMAPClient(imap_account.host, imap_account.port, ssl=False).login(
            imap_account.user, imap_account.oauth_token
        )


def test_add_user_at_runtime(dovecot: DovecotServer) -> None:
    # Several in a row: Dovecot re-reads a changed passwd-file only once a second.
    for _ in range(3):
        user = dovecot.add_user()
        client = IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=10)
        client.login(user.name, user.password)
        client.logout()
    with pytest.raises(ValueError, match="exists"):
        dovecot.add_user(user.name)
    with pytest.raises(ValueError, match="bad user name"):
        dovecot.add_user("Upper")


# -- folders and capabilities --------------------------------------------------------------


def test_special_use_folders_listed_and_subscribed(imap_account: ImapAccount) -> None:
    client = connect(imap_account)
    listed = {name: flags for flags, delim, name in client.list_folders()}
    assert all(delim == b"/" for _, delim, _ in client.list_folders())
    for name, flag in SPECIAL_FOLDERS.items():
        assert flag.encode() in listed[name], name
    assert "INBOX" in listed
    subscribed = {name for _, _, name in client.list_sub_folders()}
    assert set(SPECIAL_FOLDERS) <= subscribed
    assert client.find_special_folder(b"\\Archive") == "Archive"
    client.logout()


def test_default_capabilities_are_dovecots(imap_account: ImapAccount) -> None:
    # Guards DOVECOT_CAPABILITIES: the variants below are built from it.
    client = connect(imap_account)
    expected = {c.upper() for c in DOVECOT_CAPABILITIES}
    assert caps(client) == expected
    client.logout()


def test_nomove_server_does_not_advertise_move(dovecot_nomove: DovecotServer) -> None:
    client = connect(dovecot_nomove.new_account("nomove"))
    expected = {c.upper() for c in DOVECOT_CAPABILITIES} - {"MOVE"}
    assert caps(client) == expected
    assert client.has_capability("UIDPLUS")
    client.logout()


def test_nomove_server_still_accepts_move(dovecot_nomove: DovecotServer) -> None:
    # Dovecot quirk worth knowing: hiding MOVE does not disable it; clients go by CAPABILITY.
    account = dovecot_nomove.new_account("nomove")
    dovecot_nomove.seed(account.user, "INBOX", [message(1)])
    client = connect(account)
    client.select_folder("INBOX")
    assert not client.has_capability("MOVE")
    # imapclient's move() refuses without the capability, so send the command itself.
    typ, _ = client._imap._simple_command("UID", "MOVE", str(client.search("ALL")[0]), "Archive")
    assert typ == "OK"
    assert client.folder_status("Archive", ["MESSAGES"])[b"MESSAGES"] == 1
    client.logout()


def test_noidle_server_does_not_advertise_idle(dovecot_noidle: DovecotServer) -> None:
    client = connect(dovecot_noidle.new_account("noidle"))
    assert "IDLE" not in caps(client)
    assert "MOVE" in caps(client)
    client.logout()


def test_unknown_capability_cannot_be_removed() -> None:
    with pytest.raises(ValueError, match="cannot remove"):
        DovecotServer(capabilities_without=("XLIST",))


# -- TLS -----------------------------------------------------------------------------------


def test_tls_rejects_untrusted_certificate(dovecot_tls: DovecotServer) -> None:
    assert dovecot_tls.imaps_port
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(
            "localhost",
            dovecot_tls.imaps_port,
            ssl_context=ssl.create_default_context(),
            timeout=10,
        )


def test_tls_accepts_with_cafile(dovecot_tls: DovecotServer) -> None:
    user = dovecot_tls.user
    assert dovecot_tls.imaps_port
    context = ssl.create_default_context(cafile=str(dovecot_tls.cert_file))
    for host in ("localhost", "127.0.0.1"):  # the certificate names both
        client = IMAPClient(host, dovecot_tls.imaps_port, ssl_context=context, timeout=10)
        client.login(user.name, user.password)
        client.logout()


def test_starttls(dovecot_tls: DovecotServer) -> None:
    user = dovecot_tls.user
    client = IMAPClient("localhost", dovecot_tls.port, ssl=False, timeout=10)
    assert client.has_capability("STARTTLS")
    client.starttls(ssl.create_default_context(cafile=str(dovecot_tls.cert_file)))
    client.login(user.name, user.password)
    client.logout()
    client = IMAPClient("localhost", dovecot_tls.port, ssl=False, timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        client.starttls(ssl.create_default_context())


# -- seeded mail ---------------------------------------------------------------------------


def test_maildir_layout(dovecot: DovecotServer) -> None:
    root = dovecot.maildir_path("someone")
    assert dovecot.root is not None
    assert root == dovecot.root / "mail" / "someone"
    assert dovecot.maildir_path("someone", "inbox") == root
    assert dovecot.maildir_path("someone", "Vendors/Acme") == root / ".Vendors.Acme"
    assert dovecot.maildir_path("someone", "Über") == root / ".&ANw-ber"
    with pytest.raises(ValueError, match=r"'\.'"):
        dovecot.maildir_path("someone", "Acme Inc.")


@pytest.mark.parametrize("flags", ["", "S"])
def test_seed_1000_messages(imap_account: ImapAccount, dovecot: DovecotServer, flags: str) -> None:
    messages = [message(i, crlf=i % 2 == 0) for i in range(1000)]
    files = dovecot.seed(imap_account.user, "INBOX", messages, flags=flags)
    assert len(files) == 1000
    assert all(f.parent.name == ("cur" if flags else "new") for f in files)
    client = connect(imap_account)
    assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 1000
    uids = client.search("ALL")
    assert len(client.search("UNSEEN")) == (0 if flags else 1000)
    assert len(client.search("SEEN")) == (1000 if flags else 0)
    fetched = client.fetch(uids, ["RFC822.SIZE", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
    # UIDs follow the order given, and sizes are the CRLF sizes whatever the line ends on disk.
    for i, uid in enumerate(uids):
        assert fetched[uid][b"RFC822.SIZE"] == crlf_size(messages[i])
        assert f"<m{i}@example.com>".encode() in fetched[uid][b"BODY[HEADER.FIELDS (MESSAGE-ID)]"]
    body = client.fetch([uids[1]], ["BODY.PEEK[]"])[uids[1]][b"BODY[]"]
    assert body == messages[1].replace(b"\n", b"\r\n")  # bare LF on disk, CRLF on the wire
    client.logout()


def test_seed_new_folder_while_logged_in(imap_account: ImapAccount, dovecot: DovecotServer) -> None:
    client = connect(imap_account)
    client.list_folders()
    dovecot.seed(imap_account.user, "Vendors/Acme", [message(1), message(2)], flags="SF")
    dovecot.seed(imap_account.user, "Sent", [message(3)])
    assert {"Vendors/Acme", "Sent"} <= {name for _, _, name in client.list_folders()}
    assert "Vendors/Acme" in {name for _, _, name in client.list_sub_folders()}
    status = client.folder_status("Vendors/Acme", ["MESSAGES", "UNSEEN"])
    assert status == {b"MESSAGES": 2, b"UNSEEN": 0}
    client.select_folder("Vendors/Acme")
    flags = client.get_flags(client.search("ALL"))
    assert all({b"\\Seen", b"\\Flagged"} <= set(f) for f in flags.values())
    assert client.folder_status("Sent", ["MESSAGES"])[b"MESSAGES"] == 1
    client.logout()


def test_seed_shows_up_in_idle(imap_account: ImapAccount, dovecot: DovecotServer) -> None:
    client = connect(imap_account)
    client.select_folder("INBOX")
    client.idle()
    dovecot.seed(imap_account.user, "INBOX", [message(7)])
    responses: list[tuple[object, ...]] = []
    deadline = time.monotonic() + 5  # Dovecot batches notifications: 0.25-0.5 s
    while (1, b"EXISTS") not in responses and time.monotonic() < deadline:
        responses += client.idle_check(timeout=deadline - time.monotonic())
    client.idle_done()
    assert (1, b"EXISTS") in responses
    client.logout()


# -- lifecycle -----------------------------------------------------------------------------


def test_restart_keeps_mail_and_drops_connections() -> None:
    with DovecotServer() as server:
        account = server.account()
        server.seed(account.user, "INBOX", [message(1)])
        client = connect(account)
        client.select_folder("INBOX")
        port = server.port
        server.restart()
        assert server.running and server.port == port
        with pytest.raises((IMAPClient.AbortError, OSError)):
            client.noop()
        client = connect(account)
        assert client.select_folder("INBOX")[b"EXISTS"] == 1
        client.logout()
        with server.stopped():
            with pytest.raises(ConnectionRefusedError):
                IMAPClient(server.host, server.port, ssl=False, timeout=5)
            # Seeding works while it is down too (then on disk, not through doveadm).
            server.seed(account.user, "Vendors/Offline", [message(2), message(3)])
        client = connect(account)
        assert "Vendors/Offline" in {name for _, _, name in client.list_sub_folders()}
        assert client.folder_status("Vendors/Offline", ["MESSAGES"])[b"MESSAGES"] == 2
        client.logout()
        root = server.root
        assert root is not None and root.exists()
    assert not server.running
    assert not root.exists()


def test_kick_disconnects_a_user(dovecot: DovecotServer) -> None:
    account = dovecot.new_account("kick")
    client = connect(account)
    client.select_folder("INBOX")
    dovecot.kick(account.user)
    with pytest.raises((IMAPClient.AbortError, OSError)):
        for _ in range(50):  # the BYE arrives asynchronously
            client.noop()
            time.sleep(0.05)

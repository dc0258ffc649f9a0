"""Maildir backend specifics that the shared mailbox suite does not cover."""

from __future__ import annotations

from pathlib import Path

import pytest

from triage.errors import MailboxError
from triage.mailbox import utf7
from triage.mailbox.maildir import UIDLIST, MaildirMailbox

MESSAGE = b"From: a@vendor.example\r\nMessage-ID: <m1@vendor.example>\r\n\r\nhello\r\n"


def test_modified_utf7_round_trip() -> None:
    for name, encoded in [
        ("Café", "Caf&AOk-"),
        ("A&B", "A&-B"),
        ("日本語", "&ZeVnLIqe-"),
        ("plain", "plain"),
    ]:
        assert utf7.encode(name) == encoded
        assert utf7.decode(encoded) == name


def test_missing_maildir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MailboxError, match="not a Maildir"):
        MaildirMailbox(tmp_path / "nothing").connect()


def test_uids_are_stable_and_survive_a_new_instance(tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    with MaildirMailbox(root, create=True) as box:
        first = box.append("INBOX", MESSAGE)
        second = box.append("INBOX", MESSAGE.replace(b"m1@", b"m2@"))
        validity = box.select("INBOX").uidvalidity
    # A file dropped in by another program (a sync tool) gets the next UID.
    (root / "new" / "1700000000.M1P1Q1.host,S=10").write_bytes(b"x: y\r\n\r\nz\r\n")
    with MaildirMailbox(root) as box:
        state = box.select("INBOX")
        assert state.uidvalidity == validity
        uids = box.uids_above(0)
    assert uids[:2] == [first, second]
    assert len(uids) == 3 and uids[2] > second  # type: ignore[operator]


def test_flags_change_does_not_change_the_uid(tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    with MaildirMailbox(root, create=True) as box:
        uid = box.append("INBOX", MESSAGE)
        box.select("INBOX")
        [path] = list((root / "new").iterdir())
        # A mail client reads the message: it moves to cur/ with the S flag.
        path.rename(root / "cur" / f"{path.name}:2,S")
        assert box.uids_above(0) == [uid]
        [fetched] = list(box.fetch([uid], max_bytes=100))
        assert fetched.seen


def test_unreadable_uidlist_starts_a_new_uidvalidity(tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    with MaildirMailbox(root, create=True) as box:
        box.append("INBOX", MESSAGE)
        key = next((root / "new").iterdir()).name
        (root / UIDLIST).write_text(f"1000 2\n1 {key}\n")
        assert box.select("INBOX").uidvalidity == 1000
        (root / UIDLIST).write_text("garbage\n")
        # A new UIDVALIDITY tells the caller to resync by Message-ID.
        new = box.select("INBOX")
    assert new.exists == 1
    assert new.uidvalidity != 1000


def test_folder_names_with_dots_are_refused(tmp_path: Path) -> None:
    box = MaildirMailbox(tmp_path / "Mail", create=True)
    with box, pytest.raises(MailboxError, match=r"cannot .* contain '\.'"):
        box.create_folder("Vendors/Acme Inc.")


def test_header_only_fetch_handles_lf_line_endings(tmp_path: Path) -> None:
    with MaildirMailbox(tmp_path / "Mail", create=True) as box:
        body = b"line\r\n\r\nmore\r\n" * 100
        uid = box.append("INBOX", b"From: a@b.example\nMessage-ID: <lf@b>\n\n" + body)
        box.select("INBOX")
        [fetched] = list(box.fetch([uid], max_bytes=10))
        assert fetched.data == b"From: a@b.example\nMessage-ID: <lf@b>\n\n" + body[:10]
        assert fetched.truncated
        assert box.fetch_message_ids([uid]) == {uid: "<lf@b>"}

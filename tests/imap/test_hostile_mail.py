"""Hostile and broken mail (tests/hostile.py) delivered to a trained account on Dovecot."""

from __future__ import annotations

from collections import Counter

import hostile
import imapclient
from click.testing import CliRunner
from dovecot import ImapAccount
from helpers import census

from triage import engine, sample
from triage.cli import cli
from triage.config import Config
from triage.message import parse

#: Corpus kinds delivered: the biggest and the most broken, one of each family of damage (the
#: random combinations are left to tests/test_hostile.py: some have no usable Message-ID).
SELECTION = (
    "huge-attachment",  # 50 MB
    "recipients-10000-cc-and-1mb-header",  # 10,000 recipients and a 1 MB header line
    "recipients-10000-folded",
    "header-1mb-subject",
    "header-300k-continuation-lines",
    "header-100k-fields",
    "boundary-100k-parts",
    "boundary-400k-lookalike-lines",
    "boundary-never-closed",
    "nested-100",
    "nested-100-message-rfc822",
    "charset-unicode-escape-surrogates",
    "charset-encoded-words-surrogates",
    "charset-8bit-headers-surrogate-hint",
    "charset-1000-distinct-encoded-words",
    "nul-in-headers",
    "nul-in-html",
    "base64-garbage",
    "qp-500k-soft-breaks",
    "html-100k-nested-divs",
    "html-1mb-attribute",
    "html-unclosed-comment",
    "html-100k-anchor-starts-without-close",
)


def uids_by_message_id(account: ImapAccount, folder: str) -> dict[str, int]:
    client = imapclient.IMAPClient(account.host, account.port, ssl=False)
    client.login(account.user, account.password)
    try:
        client.select_folder(folder, readonly=True)
        data = client.fetch(client.search("ALL"), ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        return {
            v[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().split(":", 1)[1].strip(): uid
            for uid, v in data.items()
        }
    finally:
        client.logout()


def test_hostile_mail_is_filed_or_left_with_a_reason(
    trained_setup: Config,
    imap_account: ImapAccount,
    buyer: sample.SampleMailbox,
) -> None:
    config = trained_setup
    assert engine.run_once(config, config.account()).read == 0  # the first run files nothing
    # Half of it from a partner the model knows, with that partner's subject, so that some is
    # filed (and goes through the filing path: moves, examples, the digest's facts).
    partner = next(
        parse(m.data)
        for m in buyer.history
        if m.folder.startswith("Vendors/") and "Generic" not in m.folder
    )
    disguise = {
        b"sender@hostile.example": partner.sender.encode(),
        b"Subject: Hostile mail": b"Subject: " + partner.subject.encode(),
    }
    delivered = {}
    for i, name in enumerate(SELECTION):
        data = hostile.make(name)
        for old, new in disguise.items() if i % 2 == 0 else ():
            data = data.replace(old, new, 1)
        delivered[f"<{name}.0@hostile.example>"] = data
    imap_account.server.seed(imap_account.user, "INBOX", list(delivered.values()))
    before = Counter(mid for items in census(imap_account).values() for mid, _ in items)

    result = CliRunner().invoke(cli, ["--config", str(config.path), "-v", "run", "--once"])

    assert result.exit_code == 0, result.output[-3000:]
    assert f": {len(SELECTION)} new messages, " in result.output
    found = census(imap_account)
    after = Counter(mid for items in found.values() for mid, _ in items)
    assert after == before  # nothing lost, nothing duplicated
    places = {mid: folder for folder, items in found.items() for mid, _ in items}
    flags = {mid: f for items in found.values() for mid, f in items}
    inbox = config.account().folders.inbox
    for mid in delivered:
        assert places[mid] == inbox or places[mid].startswith("Vendors/"), places[mid]
        assert b"\\Seen" not in flags[mid], mid
    left = [mid for mid in delivered if places[mid] == inbox]
    uids = uids_by_message_id(imap_account, inbox)
    for mid in left:
        assert f"{inbox}/{uids[mid]} stays in {inbox}: " in result.output, mid
    # The broken ones say what could not be read, at the default log level too.
    assert "(read in part: " in result.output
    assert 0 < len(left) < len(delivered), places  # some filed, some left

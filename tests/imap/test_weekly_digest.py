"""The weekly digest end to end on the test Dovecot: trained on the sample buyer's folders, a
real `triage run` files the new week, `triage digest` builds the digest from what that run
stored and appends it once; then the page is rendered in headless Chromium.

The rendered page is left at .test-artifacts/digest.png (and its HTML next to it), for a human
to look at.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import email.utils
import re
from dataclasses import dataclass
from pathlib import Path

import imapclient
import pytest
from browser import count_colour, dump_dom, read_png, screenshot
from click.testing import CliRunner
from dovecot import DovecotServer, ImapAccount
from helpers import census, where_is, write_config

from triage import sample
from triage.cli import cli

ARTIFACTS = Path(__file__).resolve().parents[2] / ".test-artifacts"
# A vendor whose name and subject try to inject markup into the digest.
HOSTILE_NAME = "<script>document.title='pwned'</script>"
HOSTILE_SUBJECT = "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"


@dataclass
class Digested:
    account: ImapAccount
    config: Path
    html: Path
    output: list[str]  # what each `triage digest` printed
    message_id: str
    buyer: sample.SampleMailbox


def hostile_message(buyer: sample.SampleMailbox) -> bytes:
    when = buyer.new_week[len(buyer.new_week) // 2].date
    return (
        f'From: "{HOSTILE_NAME}" <sales@evil.example>\r\n'
        f"To: {buyer.buyer.address}\r\n"
        f"Subject: {HOSTILE_SUBJECT}\r\n"
        f"Date: {email.utils.format_datetime(when)}\r\n"
        "Message-ID: <hostile-1@evil.example>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Special offer, just for you.\r\n"
    ).encode()


def triage(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def digested(
    dovecot: DovecotServer,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch_module: pytest.MonkeyPatch,
) -> Digested:
    buyer = sample.build(seed=5)
    account = dovecot.new_account("digest")
    monkeypatch_module.setenv("TRIAGE_TEST_PASSWORD", account.password)
    for folder in {m.folder for m in buyer.history}:
        account.server.seed(
            account.user, folder, [m.data for m in buyer.history if m.folder == folder], flags="S"
        )
    account.server.seed(account.user, "Sent", [m.data for m in buyer.sent], flags="S")
    tmp = tmp_path_factory.mktemp("digest")
    names = f'own_names = ["{buyer.buyer.first_name}", "{buyer.buyer.name}"]\n'
    pin = '[[accounts.rules]]\nfrom = "@evil.example"\nfolder = "Vendors/Generic"\n'
    config = write_config(tmp, account, buyer, names + pin)
    triage("--config", str(config), "train")
    triage("--config", str(config), "run", "--once")  # the first run leaves the inbox alone
    client = imapclient.IMAPClient(account.host, account.port, ssl=False)
    client.login(account.user, account.password)
    for message in (*buyer.new_week, None):
        data = hostile_message(buyer) if message is None else message.data
        when = buyer.new_week[0].date if message is None else message.date
        client.append("INBOX", data, msg_time=when)
    client.logout()
    filed = triage("--config", str(config), "run", "--once")
    new = len(buyer.new_week) + 1
    assert re.search(rf"Run \d+: {new} new messages, \d+ filed", filed), filed
    html = ARTIFACTS / "digest.html"
    html.unlink(missing_ok=True)
    until = sample.DEFAULT_END.isoformat()
    args = ("--config", str(config), "digest", "--until", until, "--out", str(html))
    first = triage(*args)
    second = triage(*args)
    mid = re.search(r"delivered to INBOX as (<triage-digest\.[^>]+>)", first)
    assert mid, first
    return Digested(account, config, html, [first, second], mid.group(1), buyer)


@pytest.fixture(scope="module")
def monkeypatch_module() -> pytest.MonkeyPatch:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_the_digest_is_appended_once_and_never_filed(digested: Digested) -> None:
    first, second = digested.output
    assert "Digest 2026-W47" in first and "2026-W47 was already delivered" in second
    places = where_is(digested.account)  # fails on any duplicate
    assert places[digested.message_id] == "INBOX"
    # A later run leaves triage's own digest in the inbox.
    triage("--config", str(digested.config), "run", "--once")
    assert where_is(digested.account)[digested.message_id] == "INBOX"
    flags = dict(census(digested.account)["INBOX"])[digested.message_id]
    assert b"\\Seen" not in flags  # it is news for the buyer


def fetch_digest(account: ImapAccount, message_id: str) -> email.message.EmailMessage:
    client = imapclient.IMAPClient(account.host, account.port, ssl=False)
    client.login(account.user, account.password)
    try:
        client.select_folder("INBOX", readonly=True)
        (uid,) = client.search(["HEADER", "Message-ID", message_id])
        data = client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
    finally:
        client.logout()
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def test_the_appended_digest_says_what_happened_this_week(digested: Digested) -> None:
    message = fetch_digest(digested.account, digested.message_id)
    assert message.get_content_type() == "multipart/alternative"
    html = message.get_body(("html",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert html == digested.html.read_text()  # --out wrote the same page
    # The planted events of the sample week, each flagged for its partner.
    buyer = digested.buyer
    truth = [m for m in (*buyer.history, *buyer.new_week) if m.facts]
    jump = next(m for m in truth if m.facts.get("jump"))
    for heading in ("[Unusual invoice] " + jump.vendor, "[Renewal coming up]", "[Bad news]",
                    "Termination notice", "Price increase", "[No follow-up]", "[Wrong name]",
                    "merge field"):  # fmt: skip
        assert heading in text, heading
    # No-follow-up flags only for what truly got none (the sample knows), and the planted ones.
    open_ids = {str(m.facts.get("order") or m.facts.get("ticket")) for m in truth
                if m.facts.get("follow_up") is False}  # fmt: skip
    flagged = [line for line in text.splitlines() if line.startswith("* [No follow-up]")]
    assert flagged
    for line in flagged:
        assert any(ident in line for ident in open_ids), line
    # Every partner that wrote this week has its section; the generic bucket is rolled up.
    partners_this_week = {m.vendor for m in buyer.new_week if m.folder.startswith("Vendors/")
                          and m.folder != sample.GENERIC_FOLDER}  # fmt: skip
    section = text.split("PARTNERS", 1)[1].split("GENERIC BUCKET", 1)[0]
    for partner in partners_this_week:
        assert f"- {partner}: " in section
    assert re.search(r"GENERIC BUCKET: \d+ messages from \d+ vendors", text)
    assert "waiting for your reply" in section  # from the Sent folder's replies
    assert "Promote? " in text  # the generic vendor the buyer keeps writing to
    # The hostile sender shows as text in the generic bucket.
    assert HOSTILE_SUBJECT in text
    assert "&lt;img src=x onerror=" in html and "<img" not in html


def test_the_digest_renders_in_chromium_and_injected_markup_stays_text(
    digested: Digested,
) -> None:
    page = digested.html
    dom = dump_dom(page)
    assert 'data-pwned="1"' not in dom  # the onerror handler never ran
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert title and "pwned" not in title.group(1) and title.group(1).startswith("triage digest")
    assert "&lt;script&gt;document.title" in dom  # the injected script is shown, as text
    for section in ('id="flags"', 'id="chart"', 'id="partners"', 'id="generic"'):
        assert section in dom
    png = ARTIFACTS / "digest.png"
    screenshot(page, png, width=412, height=3200)
    width, height, rows = read_png(png)
    assert (width, height) == (412, 3200)
    # The chart's bars: partners (blue), generic bucket (grey) and inbox (amber) are drawn.
    assert count_colour(rows, (0x2F, 0x6F, 0xB3)) > 2000
    assert count_colour(rows, (0x9A, 0xA5, 0xB1)) > 500
    assert count_colour(rows, (0xE0, 0xA0, 0x30)) > 300
    # The page is not blank: plenty of dark text pixels.
    assert count_colour(rows, (0x1F, 0x29, 0x33), tolerance=40) > 5000

"""The digest from records (pure), its rendering and MIME form, and its delivery on a Maildir."""

from __future__ import annotations

import email
import email.policy
import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from triage import digest as weekly
from triage import engine, sample
from triage.config import WEEKDAYS, parse_config
from triage.facts import Fact
from triage.mailbox.maildir import MaildirMailbox
from triage.store import MailRecord, Store

END = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
START = END - timedelta(days=7)
ACME, GLOBEX, PITCHY = "acme.example", "globex.example", "pitchy.example"


def at(days_before_end: float) -> datetime:
    return END - timedelta(days=days_before_end)


def iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds")


def mail(
    n: str,
    when: datetime,
    *,
    vendor: str = ACME,
    role: str = weekly.PARTNER,
    folder: str = "Vendors/Acme",
    subject: str = "Hello",
    thread: str = "",
    sender: str = "",
    name: str = "",
    bulk: bool = False,
    refs: str = "",
    recipients: str = "",
) -> MailRecord:
    mid = f"<{n}@x>"
    return MailRecord(
        header_hash=hashlib.sha256(n.encode()).hexdigest()[:32],
        message_id=mid,
        sender=sender or f"rep@{vendor or 'buyer.example'}",
        sender_name=name,
        vendor=vendor,
        subject=subject,
        sent_at=iso(when),
        folder=folder,
        role=role,
        thread=thread or mid,
        refs=refs,
        recipients=recipients,
        bulk=bulk,
    )


def sent(n: str, when: datetime, *, to: str, answers: str = "") -> MailRecord:
    return mail(
        n, when, vendor="", role=weekly.SENT, folder="Sent", sender="me@buyer.example",
        refs=answers, recipients=to, thread=answers or f"<{n}@x>",
    )  # fmt: skip


def facts_of(record: MailRecord, *facts: Fact) -> list:
    return weekly.fact_records(record.header_hash, facts)


def fact(kind: str, vendor: str, when: datetime, **fields: object) -> Fact:
    return Fact(kind=kind, vendor=vendor, date=when, **fields)  # type: ignore[arg-type]


def build(records: list[MailRecord], facts: list, **kw: object) -> weekly.Digest:
    first: dict[str, str] = {}
    last: dict[str, str] = {}
    for m in records:
        if m.role != weekly.SENT and m.vendor:
            first[m.vendor] = min(first.get(m.vendor, m.sent_at), m.sent_at)
            if m.sent_at < iso(END):
                last[m.folder] = max(last.get(m.folder, ""), m.sent_at)
    args: dict = {
        "end": END,
        "start": START,
        "mail": sorted(records, key=lambda m: m.sent_at),
        "facts": facts,
        "first_contact": first,
        "last_in_folders": last,
        "corrections": [],
        "partner_folders": ["Vendors/Acme", "Vendors/Globex"],
        "partner_prefix": "Vendors/",
    }
    args.update(kw)
    return weekly.build("work", **args)


# -- flags ----------------------------------------------------------------------------------------


def invoice(n: str, when: datetime, amount: str, vendor: str = ACME) -> tuple[MailRecord, list]:
    record = mail(n, when, vendor=vendor, subject=f"Invoice {n}")
    f = fact("invoice", vendor, when, amount=Decimal(amount), currency="USD", reference=n)
    return record, facts_of(record, f)


def test_an_invoice_far_above_the_previous_months_is_flagged_once_in_its_week() -> None:
    history = [invoice(f"i{k}", at(7 + 30 * k), "1000.00") for k in (1, 2, 3)]
    jump = invoice("i0", at(2), "1600.00")
    records = [r for r, _ in [*history, jump]]
    facts = [f for _, fs in [*history, jump] for f in fs]
    d = build(records, facts)
    flags = [f for f in d.flags if f.kind == weekly.INVOICE]
    assert len(flags) == 1
    assert "USD 1,600.00 is 60% above the average of the 3 before it (USD 1,000.00)" in (
        flags[0].text
    )
    assert flags[0].name == "Acme"  # the partner's folder name
    assert flags[0] in d.partners[0].flags
    # The same history a week later: the jump is no longer this week's news.
    later = build(records, facts, end=END + timedelta(days=7), start=END)
    assert not [f for f in later.flags if f.kind == weekly.INVOICE]


def test_the_invoice_threshold_is_configurable_and_drops_are_flagged_too() -> None:
    history = [invoice(f"i{k}", at(7 + 30 * k), "1000.00") for k in (1, 2, 3)]
    drop = invoice("i0", at(2), "600.00")
    records = [r for r, _ in [*history, drop]]
    facts = [f for _, fs in [*history, drop] for f in fs]
    assert "40% below" in build(records, facts, settings=weekly.Settings(0.3)).flags[0].text
    assert not build(records, facts, settings=weekly.Settings(0.5)).flags


def test_renewals_within_the_window_bad_news_and_wrong_names() -> None:
    notice = mail("r1", at(60))  # said long ago, due in 20 days: still flagged
    news = mail("b1", at(3), subject="Notice of termination")
    pitch = mail("p1", at(1), vendor=PITCHY, role=weekly.GENERIC, folder="Vendors/Generic",
                 name="Pitchy Sales")  # fmt: skip
    far = mail("r2", at(30))
    facts = [
        *facts_of(notice, fact("renewal", ACME, at(60), due=(END + timedelta(days=20)).date(),
                               detail="contract expires 2026-12-06", status="expires")),
        *facts_of(far, fact("renewal", ACME, at(30), due=(END + timedelta(days=90)).date(),
                            detail="contract expires 2027-02-14", status="expires")),
        *facts_of(news, fact("bad_news", ACME, at(3), detail="termination of service",
                             status="termination")),
        *facts_of(pitch, fact("wrong_name", PITCHY, at(1), detail="greeted as 'Jenny'"),
                  fact("merge_field", PITCHY, at(1), detail="leftover merge field {FirstName}")),
    ]  # fmt: skip
    d = build([notice, news, pitch, far], facts)
    kinds = [f.kind for f in d.flags]
    assert kinds == [weekly.BAD_NEWS, weekly.RENEWAL, weekly.WRONG_NAME, weekly.WRONG_NAME]
    assert d.flags[0].text == "Termination notice: termination of service"
    assert "in 20 days" in d.flags[1].text and "2026-12-06" in d.flags[1].text
    assert d.flags[2].name == "Pitchy Sales"
    assert d.flags[2].text == "Greeted as 'Jenny': not your name"
    assert d.flags[3].text == "Leftover merge field {FirstName}"
    # A shorter renewal window leaves the renewal out.
    short = build([notice, news, pitch, far], facts, settings=weekly.Settings(renewal_days=10))
    assert weekly.RENEWAL not in [f.kind for f in short.flags]


def test_open_tickets_and_shipments_without_a_follow_up() -> None:
    ticket = mail("t1", at(6), subject="Case opened", thread="<t1@x>")
    quiet_ship = mail("s1", at(10), subject="Shipped")
    answered = mail("t2", at(9), subject="Case opened", thread="<t2@x>")
    update = mail("t2b", at(8), subject="Re: Case", thread="<t2@x>")  # same thread, no number
    delivered_ship = mail("s2", at(12), subject="Shipped")
    delivered = mail("s2b", at(10), subject="Delivered", vendor="carrier.example",
                     role=weekly.KEEP, folder="INBOX")  # fmt: skip
    young = mail("t3", at(2), subject="Case opened")
    facts = [
        *facts_of(ticket, fact("ticket", ACME, at(6), reference="CASE-1", status="opened",
                               detail="ticket CASE-1 opened")),
        *facts_of(quiet_ship, fact("shipment", ACME, at(10), reference="ORD-1 TRK1",
                                   status="shipped", detail="order ORD-1 shipped")),
        *facts_of(answered, fact("ticket", ACME, at(9), reference="CASE-2", status="opened")),
        *facts_of(delivered_ship, fact("shipment", ACME, at(12), reference="ORD-2 TRK2",
                                       status="shipped")),
        *facts_of(delivered, fact("shipment", "carrier.example", at(10), reference="TRK2",
                                  status="delivered")),
        *facts_of(young, fact("ticket", ACME, at(2), reference="CASE-3", status="opened")),
    ]  # fmt: skip
    records = [ticket, quiet_ship, answered, update, delivered_ship, delivered, young]
    texts = [f.text for f in build(records, facts).flags if f.kind == weekly.NO_FOLLOW_UP]
    assert texts == [
        "Order ORD-1 shipped: 10 days ago, and nothing from them about it since",
        "Ticket CASE-1 opened: 6 days ago, and nothing from them about it since",
    ]
    # N is configurable: after 7 days the 6-day-old ticket is not overdue yet.
    later = build(records, facts, settings=weekly.Settings(follow_up_days=7)).flags
    assert [f.text[:12] for f in later if f.kind == weekly.NO_FOLLOW_UP] == ["Order ORD-1 "]


def test_a_delivery_naming_the_order_closes_a_shipping_notice_in_the_same_thread() -> None:
    """The shipping notice gives only a tracking number; it answers the order confirmation,
    and the delivery notice names the order."""
    confirmation = mail("c1", at(20), subject="Order confirmed")
    shipped = mail("c2", at(19), subject="On the way", thread="<c1@x>")
    delivered = mail("c3", at(17), subject="Delivered")
    facts = [
        *facts_of(confirmation, fact("shipment", ACME, at(20), reference="PO-1 ORD-9",
                                     status="ordered")),
        *facts_of(shipped, fact("shipment", ACME, at(19), reference="TRK-9", status="shipped")),
        *facts_of(delivered, fact("shipment", ACME, at(17), reference="ORD-9",
                                  status="delivered")),
    ]  # fmt: skip
    assert not build([confirmation, shipped, delivered], facts).flags
    flags = build([confirmation, shipped], facts[:2]).flags
    assert [f.kind for f in flags] == [weekly.NO_FOLLOW_UP]


# -- partners, the generic bucket and what was learnt --------------------------------------------


def test_partner_threads_waiting_for_the_buyers_reply() -> None:
    asked = mail("a1", at(5), subject="Quote", sender="ann@acme.example", name="Ann")
    replied = mail("a2", at(4), subject="Meeting?", sender="bob@acme.example")
    again = mail("a3", at(1), subject="Re: Meeting?", thread="<a2@x>")  # after the reply
    news = mail("a4", at(3), subject="Newsletter", bulk=True)
    records = [
        asked, replied, again, news,
        sent("s1", at(3.5), to="bob@acme.example", answers="<a2@x>"),
        mail("g1", at(2), vendor=GLOBEX, folder="Vendors/Globex"),
        mail("g0", at(40), vendor=GLOBEX, folder="Vendors/Globex"),
    ]  # fmt: skip
    d = build(records, [])
    acme = next(p for p in d.partners if p.name == "Acme")
    assert acme.messages == 4
    assert [t.subject for t in acme.awaiting_reply] == ["Re: Meeting?", "Quote"]
    assert acme.awaiting_reply[1].sender == "Ann"
    assert acme.last_contact == at(1)
    globex = next(p for p in d.partners if p.name == "Globex")
    assert globex.messages == 1 and globex.awaiting_reply[0].subject == "Hello"
    # A reply to the thread's last message clears it.
    records.append(sent("s2", at(0.5), to="x@acme.example", answers="<a2@x> <a3@x>"))
    acme = next(p for p in build(records, []).partners if p.name == "Acme")
    assert [t.subject for t in acme.awaiting_reply] == ["Quote"]


def test_a_partner_whose_newsletter_went_to_the_generic_bucket_is_still_the_partner() -> None:
    notice = mail("r1", at(3), name="Ann Rep")
    letter = mail("n1", at(1), role=weekly.GENERIC, folder="Vendors/Generic", name="Acme News",
                  bulk=True)  # fmt: skip
    renewal = fact("renewal", ACME, at(3), due=(END + timedelta(days=20)).date(),
                   detail="subscription renews", status="expires")  # fmt: skip
    d = build([notice, letter, mail("n0", at(2), name="Acme News", bulk=True)],
              facts_of(notice, renewal))  # fmt: skip
    assert [(f.name, f.kind) for f in d.flags] == [("Acme", weekly.RENEWAL)]
    assert d.partners[0].flags == d.flags


def test_partner_names_come_from_the_folder_name() -> None:
    records = [
        mail("a1", at(1), folder="Vendors/Acme Inc."),
        mail("b1", at(1), folder="Vendors/EU/Bolt"),
    ]
    d = build(records, [], partner_folders=[])
    assert sorted(p.name for p in d.partners) == ["Acme Inc.", "EU/Bolt"]
    # A server with "." as its separator and folders under INBOX: the configured prefix.
    dotted = [mail("c1", at(1), folder="INBOX.Vendors.Bolt")]
    d = build(dotted, [], partner_folders=[], partner_prefix="INBOX.Vendors.")
    assert [p.name for p in d.partners] == ["Bolt"]


def test_quiet_partners_are_named_and_the_generic_bucket_is_rolled_up_new_first() -> None:
    old = [mail(f"o{k}", at(1 + k / 10), vendor="old.example", role=weekly.GENERIC,
                folder="Vendors/Generic", name="Old Vendor", subject=f"Offer {k}")
           for k in range(3)]  # fmt: skip
    known = mail("o9", at(50), vendor="old.example", role=weekly.GENERIC, folder="Vendors/Generic")
    new = mail("n1", at(2), vendor="new.example", role=weekly.GENERIC, folder="Vendors/Generic",
               name="Newco via PayHub")  # fmt: skip
    d = build([*old, known, new, mail("a1", at(3))], [])
    assert d.quiet_partners == ["Globex"]
    assert [(v.name, v.messages, v.new) for v in d.generic] == [
        ("Newco", 1, True),
        ("Old Vendor", 3, False),
    ]
    assert d.generic[1].subject == "Offer 0"  # the latest
    assert d.counts == {weekly.PARTNER: 1, weekly.GENERIC: 4, weekly.KEEP: 0}
    assert [(b.label, b.count, b.percent) for b in d.bucket_bars] == [
        ("Partners", 1, 25),
        ("Generic bucket", 4, 100),
        ("Left in inbox", 0, 0),  # nothing to draw
    ]


def test_generic_vendors_the_buyer_keeps_writing_to_are_promotion_candidates() -> None:
    pitch = mail("p1", at(20), vendor=PITCHY, role=weekly.GENERIC, folder="Vendors/Generic",
                 name="Pitchy")  # fmt: skip
    records = [
        pitch,
        sent("s1", at(10), to="sam@pitchy.example", answers="<p1@x>"),
        sent("s2", at(3), to="sam@pitchy.example"),
        sent("s3", at(45), to="sam@pitchy.example"),  # too long ago
        sent("s4", at(2), to="rep@acme.example"),  # a partner already
        mail("a1", at(3)),
    ]
    d = build(records, [])
    assert [(c.name, c.replies, c.messages) for c in d.candidates] == [("Pitchy", 2, 1)]
    assert not build(records[:2] + records[3:], []).candidates  # one reply is not a habit


def test_an_empty_week_says_so() -> None:
    d = build([mail("a1", at(30))], [])
    assert d.empty and d.subject.endswith("a quiet week")
    assert "A quiet week" in weekly.render_text(d)
    assert "A quiet week" in weekly.render_html(d)
    assert d.quiet_partners == ["Acme", "Globex"]


# -- rendering ------------------------------------------------------------------------------------

HOSTILE = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>document.title='pwned'</script>"


def hostile_digest() -> weekly.Digest:
    records = [
        mail("a1", at(2), subject=HOSTILE, name=SCRIPT),
        mail("x1", at(1), vendor="evil.example", role=weekly.GENERIC, folder="Vendors/Generic",
             name=SCRIPT, subject=HOSTILE),
    ]  # fmt: skip
    bad = fact("bad_news", ACME, at(2), detail=HOSTILE, status="termination")
    corrections = [weekly.Correction(SCRIPT + "@evil.example", "Vendors/Generic", "Vendors/Acme",
                                     "correction")]  # fmt: skip
    return build(records, facts_of(records[0], bad), corrections=corrections)


class Tags(HTMLParser):
    """Every tag and attribute of a page, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_mail_text_is_escaped_and_the_page_has_no_scripts_or_remote_content() -> None:
    html = weekly.render_html(hostile_digest())
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # shown as text
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in html
    parser = Tags()
    parser.feed(html)
    names = {tag for tag, _ in parser.tags}
    assert not names & {"img", "script", "iframe", "object", "embed", "link", "form", "a"}
    attributes = {name for _, attrs in parser.tags for name in attrs}
    assert not [a for a in attributes if a.startswith("on")]
    assert not attributes & {"src", "href", "srcset", "background", "action"}
    assert "url(" not in html  # no remote images through CSS either
    assert "default-src 'none'" in html  # and a CSP that would block anything that slipped


def test_text_part_has_every_section() -> None:
    text = weekly.render_text(hostile_digest())
    for heading in ("NEEDS YOUR ATTENTION", "THE WEEK IN NUMBERS", "PARTNERS",
                    "GENERIC BUCKET", "WHAT TRIAGE LEARNED"):  # fmt: skip
        assert heading in text
    assert "[Bad news] Acme: Termination notice: " + HOSTILE in text  # plain text: as written
    assert "Vendors/Generic -> Vendors/Acme" in text


def test_mime_message_is_multipart_alternative_with_a_stable_message_id() -> None:
    d = hostile_digest()
    mid = weekly.message_id("work", d.week, "buyer.example")
    assert mid == weekly.message_id("work", d.week, "buyer.example")
    assert mid.startswith("<triage-digest.2026-W47.work@")
    html, text = weekly.render_html(d), weekly.render_text(d)
    data = weekly.mime_message(
        d, sender="me@buyer.example", recipient="me@buyer.example", message_id=mid, html=html,
        text=text,
    )  # fmt: skip
    assert b"\r\n" in data and b"\n\n" not in data.replace(b"\r\n", b"")
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["Message-ID"] == mid
    parts = [p.get_content_type() for p in parsed.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    # The same text, with the CRLF line ends of mail.
    html_part = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert html_part.replace("\r\n", "\n") == html
    text_part = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text_part.replace("\r\n", "\n") == text


# -- delivery on a Maildir, and the schedule ------------------------------------------------------


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo mailbox trained and with its new week filed (no digest yet)."""
    from triage import demo

    root = tmp_path_factory.mktemp("digest-demo")
    demo.run_demo(root, end=sample.DEFAULT_END, with_digest=False)
    return root


def demo_config(root: Path, extra: str = ""):  # type: ignore[no-untyped-def]
    buyer = sample.build(seed=7).buyer
    text = (
        f'[triage]\nstate_dir = "{root / "state"}"\n[run]\n{extra}\n'
        f'[[accounts]]\nname = "demo"\nbackend = "maildir"\npath = "{root / "Mail"}"\n'
        f'own_domains = ["{buyer.domain}"]\nown_addresses = ["{buyer.address}"]\n'
        f'own_names = ["{buyer.first_name}", "{buyer.name}"]\n'
    )
    return parse_config(text, source="test")


def inbox_digests(root: Path) -> list[str]:
    with MaildirMailbox(root / "Mail") as box:
        box.select("INBOX")
        ids = box.fetch_message_ids(box.uids_above(0)).values()
    return [m for m in ids if m.startswith("<triage-digest.")]


def test_delivered_once_per_week_even_when_the_store_forgets(demo_root: Path) -> None:
    config = demo_config(demo_root)
    account = config.account()
    out = demo_root / "out" / "digest.html"
    out.parent.mkdir()
    out.write_text("an older page")
    out.chmod(0o644)  # readable by others: rewriting it makes it private
    first = engine.digest(config, account, end=sample.DEFAULT_END, out=out)
    assert first.delivered and first.digest.week == "2026-W47"
    assert out.read_text() == first.html and out.stat().st_mode & 0o077 == 0
    assert inbox_digests(demo_root) == [first.message_id]
    again = engine.digest(config, account, end=sample.DEFAULT_END + timedelta(hours=5))
    assert not again.delivered and "already delivered" in again.note
    # The store lost its record (restored from a backup, say): the folder still has it.
    with Store.open(config.state_dir / "triage.db") as store:
        store.db.execute("DELETE FROM digests")
    third = engine.digest(config, account, end=sample.DEFAULT_END)
    assert not third.delivered and "already in INBOX" in third.note
    assert inbox_digests(demo_root) == [first.message_id]
    # The next run leaves the digest in the inbox (never files triage's own mail).
    engine.run_once(config, account)
    assert inbox_digests(demo_root) == [first.message_id]


def test_a_quiet_week_is_skipped_when_configured(demo_root: Path) -> None:
    quiet_end = sample.DEFAULT_END + timedelta(days=60)
    skip = demo_config(demo_root, "digest_skip_empty = true")
    report = engine.digest(skip, skip.account(), end=quiet_end)
    assert report.digest.empty and not report.delivered and "digest_skip_empty" in report.note
    assert not [m for m in inbox_digests(demo_root) if "2027-W" in m]
    # The skip is remembered: `triage run` does not build it again on every pass that week.
    with (
        Store.open(skip.state_dir / "triage.db") as store,
        MaildirMailbox(demo_root / "Mail") as box,
    ):
        assert store.digest_delivered("demo", report.digest.week) == engine.DIGEST_SKIPPED
        later = quiet_end + timedelta(days=7)  # the next week's turn, as quiet
        when = engine.scheduled_digest(skip, later)
        assert store.digest_delivered("demo", weekly.week_key(when)) is None
        report = engine.maybe_deliver_digest(skip, skip.account(), box, store, later)
        assert report is not None and not report.delivered
        assert engine.maybe_deliver_digest(skip, skip.account(), box, store, later) is None
    # Asked for by hand with the quiet digest wanted, it is delivered after all.
    send = demo_config(demo_root)
    report = engine.digest(send, send.account(), end=quiet_end)
    assert report.delivered and "A quiet week" in report.text


def test_the_schedule_is_the_configured_weekday_and_hour() -> None:
    config = demo_config(Path("/nonexistent"), 'digest_weekday = "friday"\ndigest_hour = 17')
    tz = datetime(2026, 11, 18, 12, tzinfo=UTC).tzinfo
    wednesday = datetime(2026, 11, 18, 12, tzinfo=tz)
    assert engine.scheduled_digest(config, wednesday) == datetime(2026, 11, 13, 17, tzinfo=tz)
    friday_late = datetime(2026, 11, 20, 18, tzinfo=tz)
    assert engine.scheduled_digest(config, friday_late) == datetime(2026, 11, 20, 17, tzinfo=tz)
    friday_early = datetime(2026, 11, 20, 16, 59, tzinfo=tz)
    assert engine.scheduled_digest(config, friday_early) == datetime(2026, 11, 13, 17, tzinfo=tz)


def test_run_sends_the_weeks_digest_once_it_is_due_and_only_for_weeks_it_was_filing(
    tmp_path: Path,
) -> None:
    from triage import demo

    demo.run_demo(tmp_path, end=sample.DEFAULT_END, with_digest=False)
    config = demo_config(tmp_path)
    account = config.account()
    with (
        Store.open(config.state_dir / "triage.db") as store,
        MaildirMailbox(tmp_path / "Mail") as box,
    ):
        first = store.first_decision_at(account.name)
        assert first is not None
        started = datetime.fromisoformat(first)
        # The week triage started in: no digest for a week it was not filing.
        assert engine.maybe_deliver_digest(config, account, box, store, started) is None
        # A week later, after Monday 07:00: the digest of the week before, once.
        later = started + timedelta(days=8)
        report = engine.maybe_deliver_digest(config, account, box, store, later)
        assert report is not None and report.delivered
        assert report.digest.end == engine.scheduled_digest(config, later)
        assert engine.maybe_deliver_digest(config, account, box, store, later) is None


def test_triage_run_delivers_the_digest_when_its_hour_has_come(tmp_path: Path) -> None:
    """run_forever's own schedule: with digest day and hour already past this week and triage
    filing since before then, the first pass delivers the digest, and only once."""
    from triage import demo

    demo.run_demo(tmp_path, end=sample.DEFAULT_END, with_digest=False)
    today = datetime.now().astimezone()
    weekday = WEEKDAYS[today.weekday()]
    config = demo_config(tmp_path, f'digest_weekday = "{weekday}"\ndigest_hour = 0')
    with Store.open(config.state_dir / "triage.db") as store:  # filing since last month
        store.db.execute("UPDATE decisions SET at = '2026-10-01T00:00:00+00:00'")
    reports: list[engine.RunReport] = []
    for runs in (1, 2):  # `triage run` started, stopped after a pass, and started again
        engine.run_forever(
            config, config.account(), stop=lambda n=runs: len(reports) >= n,
            on_report=reports.append,
        )  # fmt: skip
    assert len(reports) == 2
    delivered = [r.digest for r in reports if r.digest is not None]
    assert len(delivered) == 1 and delivered[0].delivered
    assert delivered[0].digest.end == engine.scheduled_digest(config, today)
    assert inbox_digests(tmp_path) == [delivered[0].message_id]

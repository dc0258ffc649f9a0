"""The sample mailbox: deterministic, well-formed, varied, and true to its ground truth."""

from __future__ import annotations

import email
import functools
import itertools
import mailbox
import os
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from pathlib import Path

import pytest

from triage import sample
from triage.sample import (
    ARCHIVE,
    DEFAULT_END,
    GENERIC_FOLDER,
    INBOX,
    VENDOR_PREFIX,
    SampleMailbox,
    SampleMessage,
    build,
    write_maildir,
)

# Kinds the digest and the classifier rely on; each must be in the sample somewhere.
REQUIRED_KINDS = {
    "order_confirmation",
    "shipment",
    "delivery",
    "invoice",
    "renewal_notice",
    "outage",
    "outage_followup",
    "termination",
    "price_increase",
    "end_of_life",
    "support_ticket",
    "support_update",
    "cold_pitch",
    "newsletter",
    "webinar",
    "event_invite",
    "marketing",
    "maintenance",
    "receipt",
    "payment_receipt",
    "quote",
    "meeting",
    "introduction",
    "colleague",
    "personal",
}
# Kinds that must turn up in the new week itself, so a demo digest has something to say.
NEW_WEEK_KINDS = {
    "order_confirmation",
    "shipment",
    "invoice",
    "renewal_notice",
    "outage",
    "outage_followup",
    "termination",
    "price_increase",
    "support_ticket",
    "introduction",
    "cold_pitch",
    "newsletter",
    "webinar",
    "event_invite",
    "marketing",
    "maintenance",
    "receipt",
    "colleague",
    "personal",
}


# Local parts of the addresses vendors' systems send from (billing runs, order desks, status pages).
SYSTEM_SENDERS = {
    "billing", "ar", "invoices", "orders", "noreply", "customerservice", "support", "servicedesk",
    "help", "news", "hello", "renewals", "notifications",
}  # fmt: skip


@pytest.fixture(scope="module")
def box() -> SampleMailbox:
    return build()


def _all(box: SampleMailbox) -> tuple[SampleMessage, ...]:
    return (*box.history, *box.new_week)


def _parse(msg: SampleMessage) -> EmailMessage:
    return _parse_bytes(msg.data)


# policy.default parses about 1,000 messages a second; several tests read the same ones.
@functools.cache
def _parse_bytes(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _text(msg: SampleMessage) -> str:
    return _text_bytes(msg.data)


@functools.cache
def _text_bytes(data: bytes) -> str:
    """All text/* parts, decoded (HTML left as markup, which still holds the amounts)."""
    parts = []
    for part in _parse_bytes(data).walk():
        if part.get_content_maintype() == "text":
            parts.append(part.get_content())
    return "\n".join(parts)


def _flat(msg: SampleMessage) -> str:
    """The text with line wrapping undone, for looking up phrases."""
    return " ".join(_text(msg).split())


def _sender(msg: SampleMessage) -> str:
    return parseaddr(str(_parse(msg)["From"]))[1].lower()


_MONEY = re.compile(
    r"(?:US\$|\$|USD |EUR |€ |£|GBP )(\d{1,3}(?:[.,]\d{3})*(?:[.,]\d{2})?)"
    r"|(\d{1,3}(?:[.,]\d{3})*(?:[.,]\d{2})?) (?:USD|€)"
)


def _amounts(text: str) -> list[float]:
    """Every amount written with a currency marker, in US or European notation."""
    found = []
    for match in _MONEY.finditer(text):
        token = match.group(1) or match.group(2)
        if re.fullmatch(r"\d{1,3}(?:\.\d{3})*,\d{2}", token):
            token = token.replace(".", "").replace(",", ".")  # 3.200,00 -> 3200.00
        else:
            token = token.replace(",", "")
        found.append(float(token))
    return found


def _date_spellings(d: date) -> set[str]:
    month = d.strftime("%B")
    return {
        f"{month} {d.day}, {d.year}",
        f"{month[:3]} {d.day}, {d.year}",
        f"{d.month:02d}/{d.day:02d}/{d.year}",
        f"{d.day:02d}/{d.month:02d}/{d.year}",
        f"{d.day:02d}.{d.month:02d}.{d.year}",
        f"{d.day} {month} {d.year}",
        d.isoformat(),
    }


# -- determinism ----------------------------------------------------------------------------------


def _fingerprint(box: SampleMailbox) -> list[tuple[object, ...]]:
    return [(m.folder, m.data, m.date, m.kind, m.vendor, dict(m.facts)) for m in _all(box)]


def test_same_seed_gives_identical_bytes(box: SampleMailbox) -> None:
    again = build(7)
    assert again.buyer == box.buyer
    assert again.partners == box.partners
    assert _fingerprint(again) == _fingerprint(box)


def test_other_seed_gives_another_mailbox(box: SampleMailbox) -> None:
    other = build(8)
    assert {m.data for m in _all(other)}.isdisjoint({m.data for m in _all(box)})
    assert other.buyer != box.buyer or other.partners != box.partners


def test_default_end_and_windows(box: SampleMailbox) -> None:
    split = DEFAULT_END - timedelta(days=7)
    assert all(m.date.tzinfo is not None and m.date.utcoffset() == timedelta(0) for m in _all(box))
    assert all(m.date < split for m in box.history)
    assert all(split <= m.date < DEFAULT_END for m in box.new_week)
    assert box.history[0].date >= split - timedelta(weeks=26)
    assert [m.date for m in box.history] == sorted(m.date for m in box.history)
    assert [m.date for m in box.new_week] == sorted(m.date for m in box.new_week)


def test_custom_end_and_small_mailbox_keep_the_planted_events() -> None:
    end = datetime(2027, 3, 3, 14, 30, tzinfo=UTC)
    small = build(3, weeks=4, end=end, partners=3, generic_vendors=5)
    assert len(small.partners) == 3
    assert all(m.date < end for m in _all(small))
    assert all(m.date >= end - timedelta(days=7) for m in small.new_week)
    kinds = Counter(m.kind for m in small.new_week)
    for kind in ("renewal_notice", "outage", "outage_followup", "termination", "price_increase"):
        assert kinds[kind] >= 1, kind
    assert any(m.facts.get("jump") for m in small.new_week if m.kind == "invoice")
    assert any("wrong_name" in m.facts for m in small.new_week)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"end": datetime(2026, 11, 16, 9, 0)},  # naive
        {"weeks": 0},
        {"partners": 0},
        {"partners": 13},
        {"generic_vendors": 0},
        {"generic_vendors": 1000},
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        build(**kwargs)  # type: ignore[arg-type]


# -- volumes and folders --------------------------------------------------------------------------


def test_volumes(box: SampleMailbox) -> None:
    assert 600 <= len(box.history) <= 1200
    assert 60 <= len(box.new_week) <= 120
    assert 8 <= len(box.partners) <= 10
    folders = Counter(m.folder for m in box.history)
    partner_mail = (
        sum(n for f, n in folders.items() if f.startswith(VENDOR_PREFIX)) - folders[GENERIC_FOLDER]
    )
    vendor_mail = partner_mail + folders[GENERIC_FOLDER]
    internal = folders[INBOX] + folders[ARCHIVE]
    # Partners a bit more than half of the vendor mail; colleagues and personal about a fifth.
    assert 0.5 < partner_mail / vendor_mail < 0.7
    assert 0.17 <= internal / len(box.history) <= 0.3
    assert folders[INBOX] > 20 and folders[ARCHIVE] > 20


def test_folder_sets(box: SampleMailbox) -> None:
    partner_folders = {VENDOR_PREFIX + p for p in box.partners}
    assert {m.folder for m in box.history} == {INBOX, ARCHIVE, GENERIC_FOLDER} | partner_folders
    assert {m.folder for m in box.new_week} <= {INBOX, GENERIC_FOLDER} | partner_folders
    assert {INBOX, GENERIC_FOLDER} <= {m.folder for m in box.new_week}
    assert len({m.folder for m in box.new_week} & partner_folders) >= 6
    assert set(box.folders) == {INBOX, ARCHIVE, GENERIC_FOLDER, sample.SENT} | partner_folders
    for name in box.partners:
        assert "/" not in name and "." not in name and name.isascii()


def test_sent_mail_answers_partner_mail_and_courts_one_generic_vendor(box: SampleMailbox) -> None:
    """The buyer's sent mail: replies to some partner messages (after them, before the end),
    and in the last month several messages to one generic vendor (a promotion candidate)."""
    received = {}
    for m in (*box.history, *box.new_week):
        parsed = email.message_from_bytes(m.data, policy=policy.default)
        received[parsed["Message-ID"]] = (m, parsed)
    replies, courted = 0, Counter()
    for m in box.sent:
        assert m.folder == sample.SENT
        parsed = email.message_from_bytes(m.data, policy=policy.default)
        assert parseaddr(str(parsed["From"]))[1] == box.buyer.address
        assert m.date < sample.DEFAULT_END
        parent = parsed["In-Reply-To"]
        to = parseaddr(str(parsed["To"]))[1]
        if parent:
            original, head = received[parent]
            assert original.folder.startswith(VENDOR_PREFIX) and original.folder != GENERIC_FOLDER
            assert original.date < m.date
            assert to == parseaddr(str(head["From"]))[1]
            assert str(parsed["Subject"]).startswith("Re: ")
            replies += 1
        else:
            assert m.date >= sample.DEFAULT_END - timedelta(days=30)
            courted[to.rpartition("@")[2]] += 1
    partner_mail = sum(
        1 for m, _ in received.values() if m.folder.startswith(VENDOR_PREFIX)
        and m.folder != GENERIC_FOLDER
    )  # fmt: skip
    # Some partner mail is answered, much is not (notifications, and what came in last).
    assert 0.2 * partner_mail < replies < 0.6 * partner_mail
    assert len(courted) == 1 and next(iter(courted.values())) >= 2


def test_folder_follows_who_sent_it(box: SampleMailbox) -> None:
    for m in _all(box):
        if m.vendor in box.partners:
            assert m.folder == VENDOR_PREFIX + m.vendor
        elif m.vendor:
            assert m.folder == GENERIC_FOLDER
        else:
            assert m.kind in ("colleague", "personal")
            assert m.folder in (INBOX, ARCHIVE)
    assert all(m.folder != ARCHIVE for m in box.new_week)


def test_a_shared_sender_domain_serves_both_kinds_of_folder(box: SampleMailbox) -> None:
    # A billing platform sends partners' invoices and generic vendors' receipts alike.
    folders: dict[str, set[str]] = defaultdict(set)
    for m in _all(box):
        if m.vendor:
            folders[_sender(m).split("@")[1]].add(m.folder)
    shared = [d for d, f in folders.items() if GENERIC_FOLDER in f and len(f) > 1]
    assert shared
    assert all(len(f) == 1 for d, f in folders.items() if d not in shared)


def test_generic_vendors(box: SampleMailbox) -> None:
    old = {m.vendor for m in box.history if m.folder == GENERIC_FOLDER}
    new = {m.vendor for m in box.new_week if m.folder == GENERIC_FOLDER}
    assert len(old | new) == 36
    assert len(old) >= 30
    # Vendors writing for the first time this week (the digest lists them).
    assert new - old


def test_colleagues_write_from_the_buyers_domain(box: SampleMailbox) -> None:
    colleague = [m for m in _all(box) if m.kind == "colleague"]
    assert all(_sender(m).endswith("@" + box.buyer.domain) for m in colleague)
    topics = {m.facts["topic"] for m in colleague}
    assert {"budget_review", "meeting_notes", "approval", "lunch", "hr"} <= topics
    personal = [m for m in _all(box) if m.kind == "personal"]
    assert personal and not any(_sender(m).endswith(box.buyer.domain) for m in personal)
    assert {m.folder for m in box.history if not m.vendor} == {INBOX, ARCHIVE}


def test_every_kind_is_there(box: SampleMailbox) -> None:
    assert {m.kind for m in _all(box)} >= REQUIRED_KINDS
    assert {m.kind for m in box.new_week} >= NEW_WEEK_KINDS


def test_partners_have_named_contacts_and_a_new_one_this_week(box: SampleMailbox) -> None:
    seen: dict[str, set[str]] = defaultdict(set)
    for m in box.history:
        if m.vendor in box.partners:
            seen[m.vendor].add(_sender(m))
    for partner in box.partners:
        people = {a for a in seen[partner] if a.split("@")[0] not in SYSTEM_SENDERS}
        assert 2 <= len(people) <= 4, (partner, people)  # account manager, billing, support, ...
    # People who first write this week...
    newcomers = [
        m
        for m in box.new_week
        if m.vendor in box.partners
        and _sender(m) not in seen[m.vendor]
        and _sender(m).split("@")[0] not in SYSTEM_SENDERS
    ]
    assert len({m.vendor for m in newcomers}) >= 2
    # ...but at the partner's known domain, which is what makes them learnable.
    domains = {p: {_registered(a) for a in seen[p]} for p in box.partners}
    for m in newcomers:
        assert _registered(_sender(m)) in domains[m.vendor], _sender(m)


def _registered(address: str) -> str:
    """The registered domain: "billing@status.acme.example" -> "acme.example"."""
    return ".".join(address.rsplit("@", 1)[1].split(".")[-2:])


# -- ground truth for the digest ------------------------------------------------------------------


def _invoices_by_vendor(box: SampleMailbox) -> dict[str, list[SampleMessage]]:
    out: dict[str, list[SampleMessage]] = defaultdict(list)
    for m in _all(box):
        if m.kind == "invoice":
            out[m.vendor].append(m)
    return out


def test_monthly_invoices(box: SampleMailbox) -> None:
    by_vendor = _invoices_by_vendor(box)
    assert len(by_vendor) >= len(box.partners) - 2  # most partners mail a monthly invoice
    for vendor, invoices in by_vendor.items():
        assert vendor in box.partners
        assert len(invoices) >= 5
        gaps = [(b.date - a.date).days for a, b in itertools.pairwise(invoices)]
        assert all(20 <= g <= 40 for g in gaps), (vendor, gaps)


def test_one_invoice_jumps_more_than_half_over_the_previous_three(box: SampleMailbox) -> None:
    jumps = []
    for vendor, invoices in _invoices_by_vendor(box).items():
        amounts = [float(m.facts["amount"]) for m in invoices]  # type: ignore[arg-type]
        for i in range(1, len(invoices)):
            prev = amounts[max(0, i - 3) : i]
            ratio = amounts[i] / (sum(prev) / len(prev))
            if ratio > 1.5:
                jumps.append((vendor, invoices[i]))
            else:
                assert 0.7 < ratio < 1.4, (vendor, amounts)  # the others vary within +-15%
    assert len(jumps) == 1
    vendor, jump = jumps[0]
    assert jump in box.new_week
    assert jump.facts["jump"] is True
    assert float(jump.facts["amount"]) > 1.5 * float(jump.facts["previous_average"])  # type: ignore[arg-type]
    # The amount is in the text, written so that a parser finds it.
    assert any(abs(a - float(jump.facts["amount"])) < 0.005 for a in _amounts(_text(jump)))  # type: ignore[arg-type]


def test_every_invoice_amount_is_in_its_text(box: SampleMailbox) -> None:
    currencies = set()
    for m in _all(box):
        if m.kind == "invoice":
            amount = float(m.facts["amount"])  # type: ignore[arg-type]
            assert any(abs(a - amount) < 0.005 for a in _amounts(_text(m))), m.facts
            currencies.add(m.facts["currency"])
    assert {"USD", "EUR"} <= currencies


def test_amount_and_date_formats_vary(box: SampleMailbox) -> None:
    text = "\n".join(_text(m) for m in _all(box) if m.vendor in box.partners)
    assert re.search(r"\$\d{1,3}(,\d{3})*\.\d{2}", text)  # $12,450.00
    assert re.search(r"USD \d{1,3}(,\d{3})*", text)  # USD 12,450
    assert re.search(
        r"(EUR |€ ?)\d{1,3}(\.\d{3})*,\d{2}|\d(\.\d{3})*,\d{2} €", text
    )  # EUR 3.200,00
    assert re.search(r"\b20\d\d-\d\d-\d\d\b", text)  # 2027-03-31
    assert re.search(r"\b\d\d\.\d\d\.20\d\d\b", text)  # 31.03.2027
    assert re.search(r"\b\d\d/\d\d/20\d\d\b", text)  # 03/31/2027 or 31/03/2027
    assert re.search(r"\b(January|February|March|April|May|June|July|August|September"
                     r"|October|November|December) \d{1,2}, 20\d\d\b", text)  # fmt: skip


def test_renewal_within_sixty_days_of_end(box: SampleMailbox) -> None:
    today = DEFAULT_END.date()
    upcoming = [
        m
        for m in _all(box)
        if m.kind == "renewal_notice"
        and today < m.facts["renewal_date"] <= today + timedelta(days=60)  # type: ignore[operator]
    ]
    assert len(upcoming) == 1
    renewal = upcoming[0]
    assert renewal in box.new_week and renewal.vendor in box.partners
    renew_date = renewal.facts["renewal_date"]
    assert isinstance(renew_date, date)
    # The date is written in the text in one of the formats vendors use.
    assert any(spelling in _flat(renewal) for spelling in _date_spellings(renew_date))


def test_bad_news_this_week(box: SampleMailbox) -> None:
    week = {m.kind: m for m in box.new_week}
    termination, increase = week["termination"], week["price_increase"]
    assert termination.facts["end_date"] > DEFAULT_END.date()  # type: ignore[operator]
    assert str(termination.facts["product"]) in _flat(termination)
    assert f"{increase.facts['percent']}%" in _flat(increase)
    outages = [m for m in box.new_week if m.kind == "outage"]
    follow = [m for m in box.new_week if m.kind == "outage_followup"]
    assert len(outages) == len(follow) == 1
    assert outages[0].facts["ticket"] == follow[0].facts["ticket"]
    assert outages[0].facts["follow_up"] is True
    assert str(outages[0].facts["ticket"]) in _flat(follow[0])
    assert _parse(follow[0])["In-Reply-To"] == _parse(outages[0])["Message-ID"]


def test_no_follow_up_is_rare_and_true(box: SampleMailbox) -> None:
    open_tickets = [m for m in _all(box) if m.kind == "support_ticket" and not m.facts["follow_up"]]
    assert len(open_tickets) == 1 and open_tickets[0] in box.new_week
    tickets = {m.facts["ticket"] for m in _all(box) if m.kind == "support_update"}
    assert open_tickets[0].facts["ticket"] not in tickets
    # The one shipment whose delivery never came, although its ETA has passed.
    overdue = [
        m
        for m in _all(box)
        if m.kind == "shipment" and not m.facts["follow_up"] and m.facts["eta"] < DEFAULT_END.date()  # type: ignore[operator]
    ]
    assert len(overdue) == 1 and overdue[0] in box.history
    delivered = {m.facts["order"] for m in _all(box) if m.kind == "delivery"}
    assert overdue[0].facts["order"] not in delivered


def test_wrong_name_and_merge_fields(box: SampleMailbox) -> None:
    pitches = [m for m in box.new_week if m.kind == "cold_pitch"]
    # One new sequence this week (an older one may send its follow-up this week too).
    wrong = [m for m in pitches if "wrong_name" in m.facts and m.facts["step"] == 1]
    assert len(wrong) == 1
    name = str(wrong[0].facts["wrong_name"])
    assert name != box.buyer.first_name
    assert re.search(rf"^(Hi |Hello |Hey )?{name},", _text(wrong[0]), re.M)
    assert box.buyer.first_name not in _text(wrong[0]).split("\n")[0]
    fields = {
        str(m.facts["merge_field"]): m
        for m in pitches
        if "merge_field" in m.facts and m.facts["step"] == 1
    }
    assert set(fields) == {"{FirstName}", "[Company]"}
    for field, m in fields.items():
        assert field in _text(m)
        assert m.folder == GENERIC_FOLDER
    # History has its own, so the classifier sees that they are ordinary generic mail.
    assert any("wrong_name" in m.facts for m in box.history)
    assert any("merge_field" in m.facts for m in box.history)
    # Nobody else writes to the buyer by a wrong name.
    for m in _all(box):
        if "wrong_name" not in m.facts and m.kind == "cold_pitch" and m.facts.get("step") == 1:
            assert not re.search(rf"\b{name}\b", _text(m).split("\n")[0])


# -- well-formed mail -----------------------------------------------------------------------------


def test_every_message_parses_with_the_required_headers(box: SampleMailbox) -> None:
    for m in _all(box):
        assert m.data.count(b"\n") == m.data.count(b"\r\n"), "bare LF"
        assert max(len(line) for line in m.data.split(b"\r\n")) <= 998
        parsed = _parse(m)
        for header in ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version"):
            assert parsed[header], (header, m.kind)
        assert parsed["Date"].datetime == m.date
        assert not parsed.defects
        for part in parsed.walk():
            assert not part.defects, (m.kind, part.defects)
        body = parsed.get_body(("plain", "html"))
        assert body is not None and body.get_content().strip()
        to = getaddresses([str(parsed["To"])])
        assert to and all("@" in addr for _, addr in to)


def test_message_ids_are_unique_and_threads_resolve(box: SampleMailbox) -> None:
    ids = [str(_parse(m)["Message-ID"]) for m in _all(box)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", i) for i in ids)
    known = set(ids)
    replies = [_parse(m) for m in _all(box) if _parse(m)["In-Reply-To"]]
    assert len(replies) > 50
    # Most point at a message in the sample; the rest at the buyer's own (absent) sent mail.
    inside = sum(str(r["In-Reply-To"]) in known for r in replies)
    assert 0.3 < inside / len(replies) < 1


def test_no_header_gives_the_folder_away(box: SampleMailbox) -> None:
    for m in _all(box):
        head = m.data.split(b"\r\n\r\n", 1)[0].decode("ascii")
        for word in ("Vendors", "Generic", "X-Folder", "X-Kind", "Archive", "triage"):
            assert word not in head, (word, m.kind)


def test_html_bulk_mail_and_replies(box: SampleMailbox) -> None:
    parsed = [(m, _parse(m)) for m in _all(box)]
    html_only = [(m, p) for m, p in parsed if p.get_content_type() == "text/html"]
    assert len(html_only) > 100
    for m, p in html_only:
        if m.kind == "newsletter":
            html = p.get_content()
            assert "<style>" in html and "<img " in html and "href=" in html
            assert p["List-Unsubscribe"] and p["List-Id"] and p["Precedence"] == "bulk"
    # Partners send newsletters too, so "bulk" alone does not mean "generic".
    assert any(m.kind == "newsletter" and m.vendor in box.partners for m, _ in parsed)
    alternative = [p for _, p in parsed if p.get_content_type() == "multipart/alternative"]
    assert len(alternative) > 100
    mixed = [p for _, p in parsed if p.get_content_type() == "multipart/mixed"]
    assert any(
        a.get_content_type() == "application/pdf" for p in mixed for a in p.iter_attachments()
    )
    re_subjects = [p for m, p in parsed if m.vendor and str(p["Subject"]).startswith("Re:")]
    assert len(re_subjects) > 30
    # Vendors sometimes copy the buyer's colleagues.
    cc = [p for m, p in parsed if m.vendor in box.partners and p["Cc"]]
    assert any(box.buyer.domain in str(p["Cc"]) for p in cc)
    # Non-ASCII names and bodies are encoded, not sent raw.
    assert any("=?utf-8?" in m.data.decode("ascii") for m, _ in parsed)


# -- variety --------------------------------------------------------------------------------------


def _shape(subject: str, box: SampleMailbox) -> str:
    """A subject with its numbers and names blanked, to count phrasings rather than instances."""
    for name in (*box.partners, box.buyer.company, box.buyer.first_name):
        subject = subject.replace(name, "N")
    return re.sub(r"[\w.$€£,/-]*\d[\w.$€£,/-]*", "#", subject)


def test_subjects_vary_per_kind(box: SampleMailbox) -> None:
    by_kind: dict[str, set[str]] = defaultdict(set)
    shapes: dict[str, set[str]] = defaultdict(set)
    for m in _all(box):
        subject = str(_parse(m)["Subject"])
        by_kind[m.kind].add(subject)
        shapes[m.kind].add(_shape(subject, box))
    for kind in ("invoice", "order_confirmation", "shipment", "support_ticket", "cold_pitch",
                 "newsletter", "webinar", "colleague"):  # fmt: skip
        assert len(shapes[kind]) >= 4, (kind, shapes[kind])
    assert len(by_kind["cold_pitch"]) >= 25
    assert len(by_kind["newsletter"]) >= 50


def test_invoice_mails_are_phrased_differently(box: SampleMailbox) -> None:
    openings = (
        "Please find attached invoice",
        "is now available. Amount due",
        "Attached is our invoice",
        "This is a notification that invoice",
        "Thank you for your business. Invoice",
        "Enclosed please find our invoice",
    )
    texts = [_flat(m) for m in _all(box) if m.kind == "invoice"]
    used = {o for o in openings if any(o in t for t in texts)}
    assert len(used) >= 4
    assert len({t[:80] for t in texts}) >= 10


def test_people_and_signatures_vary(box: SampleMailbox) -> None:
    senders = Counter(_sender(m) for m in _all(box))
    assert len(senders) >= 120
    signatures = set()
    for m in _all(box):
        if m.kind in ("quote", "meeting", "checkin", "cold_pitch"):
            tail = _text(m).split("\n\n")[-1]
            signatures.add(re.sub(r"\d", "#", tail)[:40])
    assert len(signatures) >= 20


def test_facts_are_read_only(box: SampleMailbox) -> None:
    with pytest.raises(TypeError):
        box.history[0].facts["x"] = 1  # type: ignore[index]
    hash(box.history[0])  # frozen and hashable despite the mapping


# -- Maildir --------------------------------------------------------------------------------------


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_file())


def test_write_maildir_layout(box: SampleMailbox, tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    write_maildir(box, root)
    for sub in ("cur", "new", "tmp"):
        assert (root / sub).is_dir()
    assert not (root / "maildirfolder").exists()
    for folder in box.folders:
        if folder == INBOX:
            continue
        path = root / ("." + folder.replace("/", "."))
        assert (path / "maildirfolder").is_file()
        for sub in ("cur", "new", "tmp"):
            assert (path / sub).is_dir()
    # The stdlib reader sees the same folders (Maildir++ names without the dot).
    expected = {f.replace("/", ".") for f in box.folders if f != INBOX}
    assert set(mailbox.Maildir(root, create=False).list_folders()) == expected


def test_write_maildir_files(box: SampleMailbox, tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    write_maildir(box, root)
    by_folder = Counter(m.folder for m in box.history)
    names = []
    data = {m.data for m in _all(box)}
    for folder, count in by_folder.items():
        path = root if folder == INBOX else root / ("." + folder.replace("/", "."))
        cur = _files(path / "cur")
        assert len(cur) == count, folder
        for f in cur:
            assert f.name.endswith(":2,S")  # read
            size = int(re.search(r",S=(\d+)", f.name).group(1))  # type: ignore[union-attr]
            assert size == f.stat().st_size
            assert f.read_bytes() in data
        names += [f.name for f in cur]
        if folder != INBOX:
            assert not _files(path / "new")
    new = _files(root / "new")
    assert len(new) == len(box.new_week)
    for f, m in zip(sorted(new, key=lambda f: f.stat().st_mtime), box.new_week, strict=True):
        assert ":2," not in f.name  # unread
        assert f"S={len(m.data)}" in f.name
        assert int(f.stat().st_mtime) == int(m.date.timestamp())
    names += [f.name for f in new]
    keys = [n.split(":")[0] for n in names]
    assert len(set(keys)) == len(keys)
    assert all(not _files(d) for d in root.glob("**/tmp"))


def test_write_maildir_mtimes_and_is_repeatable(box: SampleMailbox, tmp_path: Path) -> None:
    write_maildir(box, tmp_path)
    listing = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    by_data = {m.data: m for m in box.history}
    for f in (tmp_path / ("." + GENERIC_FOLDER.replace("/", "."))).joinpath("cur").iterdir():
        assert int(os.stat(f).st_mtime) == int(by_data[f.read_bytes()].date.timestamp())
    write_maildir(box, tmp_path)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == listing


def test_kinds_counts(box: SampleMailbox) -> None:
    counts = sample.kinds(box)
    assert sum(counts.values()) == len(box.history) + len(box.new_week)
    assert set(counts) >= REQUIRED_KINDS

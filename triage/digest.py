"""The weekly digest: what happened with each vendor, and what needs the buyer's attention.

`mail_record` and `fact_records` say what the store keeps of a message as triage files it (no
body, just the sender, subject, date, thread and the facts found); `build` turns a week of those
records into a `Digest`, with the flags a good account team would raise; `render_html`,
`render_text` and `mime_message` write it out.

Pure: no I/O. engine.py gathers the records from the store and delivers the result. Every piece
of mail-derived text reaches the HTML through Jinja2 with autoescaping, and the page has no
scripts and no remote content: the chart is a table of coloured cells, which every common mail
client shows without loading images.
"""

from __future__ import annotations

import email.policy
import email.utils
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from functools import cache

import jinja2

from triage.facts import (
    VIA,
    Fact,
    invoice_anomalies,
    reference_ids,
    unanswered,
    upcoming_renewals,
    vendor_key,
    vendor_of,
)
from triage.message import DIGEST_ID_PREFIX, Message
from triage.store import FactRecord, MailRecord, iso

PARTNER, GENERIC, KEEP, SENT = "partner", "generic", "keep", "sent"

# Flag kinds, most urgent first (the order of the "needs attention" list).
BAD_NEWS, INVOICE, RENEWAL, NO_FOLLOW_UP, WRONG_NAME = (
    "bad_news",
    "invoice",
    "renewal",
    "no_follow_up",
    "wrong_name",
)
FLAG_ORDER = (BAD_NEWS, INVOICE, RENEWAL, NO_FOLLOW_UP, WRONG_NAME)
FLAG_TITLES = {
    BAD_NEWS: "Bad news",
    INVOICE: "Unusual invoice",
    RENEWAL: "Renewal coming up",
    NO_FOLLOW_UP: "No follow-up",
    WRONG_NAME: "Wrong name",
}
_BAD_NEWS_WORDS = {
    "termination": "Termination notice",
    "discontinued": "Service discontinued",
    "end_of_life": "End of life / support",
    "price_increase": "Price increase",
}
# Local parts of addresses nobody reads replies to: their mail never waits for an answer.
_NO_REPLY = ("noreply", "no-reply", "donotreply", "do-not-reply", "notifications", "mailer-daemon")
#: How far back the buyer's replies count for "partners you may want to promote".
PROMOTE_LOOKBACK = timedelta(days=30)
#: Replies to one generic vendor in that time that make it a promotion candidate.
PROMOTE_REPLIES = 2
#: Open shipments and tickets older than this are no longer chased in the digest.
FOLLOW_UP_HORIZON = timedelta(days=45)
#: Vendors shown by name in the chart.
TOP_VENDORS = 5


# -- what is kept of a message ------------------------------------------------------------------


def is_bulk(message: Message) -> bool:
    """Newsletters, notifications and other mail nobody is expected to answer."""
    local = message.sender.partition("@")[0]
    return bool(
        message.list_unsubscribe
        or message.list_id
        or message.precedence in ("bulk", "list", "junk")
        or message.auto_submitted not in ("", "no")
        or any(word in local for word in _NO_REPLY)
    )


def thread_of(message: Message) -> str:
    """The Message-ID a conversation started with, as far as the headers tell."""
    if message.references:
        return message.references[0]
    return message.in_reply_to or message.message_id


def mail_record(
    message: Message, header_hash: str, folder: str, role: str, *, seen: datetime
) -> MailRecord:
    """What the store keeps of a message for the digest (`seen`: when triage read it; it
    stands in for a missing or far-future Date header)."""
    when = message.date
    if when is None or when > seen + timedelta(days=1):
        when = seen
    sent = role == SENT
    return MailRecord(
        header_hash=header_hash,
        message_id=message.message_id,
        sender=message.sender,
        sender_name=message.sender_name[:200],
        vendor="" if sent else vendor_of(message),
        subject=message.subject[:300],
        sent_at=iso(when),
        folder=folder,
        role=role,
        thread=thread_of(message),
        refs=" ".join([message.in_reply_to, *message.references]).strip() if sent else "",
        recipients=" ".join((*message.to, *message.cc)) if sent else "",
        bulk=is_bulk(message),
    )


def fact_records(header_hash: str, facts: Iterable[Fact]) -> list[FactRecord]:
    return [
        FactRecord(
            header_hash=header_hash,
            vendor=f.vendor,
            kind=f.kind,
            said_at=None if f.date is None else iso(f.date),
            amount=None if f.amount is None else str(f.amount),
            currency=f.currency,
            due=None if f.due is None else f.due.isoformat(),
            detail=f.detail[:300],
            reference=f.reference[:200],
            status=f.status,
        )
        for f in facts
    ]


def to_fact(record: FactRecord) -> Fact:
    return Fact(
        kind=record.kind,
        vendor=record.vendor,
        date=None if record.said_at is None else datetime.fromisoformat(record.said_at),
        amount=None if record.amount is None else Decimal(record.amount),
        currency=record.currency,
        due=None if record.due is None else date.fromisoformat(record.due),
        detail=record.detail,
        reference=record.reference,
        status=record.status,
    )


# -- the digest ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    """What the digest flags, from the config's [run] section."""

    invoice_change: float = 0.5  # an invoice this far off its vendor's recent average
    invoice_months: int = 3
    renewal_days: int = 60  # renewals due within this many days
    follow_up_days: int = 5  # an open shipment or ticket this old with nothing since


@dataclass(frozen=True, slots=True)
class Flag:
    kind: str
    vendor: str
    name: str  # who: the partner's folder name or the vendor's display name
    text: str  # one line, in plain words
    when: date | None  # the date that matters: due date, or when it was said

    @property
    def title(self) -> str:
        return FLAG_TITLES[self.kind]


@dataclass(frozen=True, slots=True)
class Thread:
    subject: str
    sender: str
    when: datetime


@dataclass
class PartnerSummary:
    folder: str
    name: str  # the folder's last component
    messages: int = 0
    awaiting_reply: list[Thread] = field(default_factory=list)
    last_contact: datetime | None = None
    flags: list[Flag] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class VendorSummary:
    vendor: str
    name: str
    messages: int
    subject: str  # the latest subject
    new: bool  # first heard from this week


@dataclass(frozen=True, slots=True)
class Correction:
    sender: str
    before: str
    after: str
    kind: str  # "correction" or "hand-filed"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A generic-bucket vendor the buyer keeps writing to."""

    vendor: str
    name: str
    replies: int
    messages: int


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    count: int
    percent: int  # of the longest bar in its chart, 1-100 (0 for a count of 0)
    colour: str


@dataclass
class Digest:
    account: str
    start: datetime
    end: datetime
    week: str  # ISO week of `end`, e.g. "2026-W47": the key that makes a digest unique
    partners: list[PartnerSummary]
    quiet_partners: list[str]
    generic: list[VendorSummary]
    flags: list[Flag]
    corrections: list[Correction]
    candidates: list[Candidate]
    counts: dict[str, int]  # partner, generic, keep: this week's messages
    bucket_bars: list[Bar]
    vendor_bars: list[Bar]

    @property
    def empty(self) -> bool:
        """Nothing filed, nothing flagged and nothing learnt this week."""
        return not (sum(self.counts.values()) or self.flags or self.corrections)

    @property
    def subject(self) -> str:
        week = f"week of {self.start:%d %b}"
        if self.empty:
            return f"triage digest, {week}: a quiet week"
        flags = len(self.flags)
        vendor_mail = self.counts.get(PARTNER, 0) + self.counts.get(GENERIC, 0)
        attention = f"{flags} to look at" if flags else "nothing to look at"
        return f"triage digest, {week}: {attention}, {vendor_mail} vendor messages"


def week_key(when: datetime) -> str:
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _money(amount: Decimal, currency: str) -> str:
    value = f"{amount:,.2f}"
    return f"{currency} {value}" if currency else value


def build(
    account: str,
    *,
    end: datetime,
    start: datetime,
    mail: Sequence[MailRecord],
    facts: Sequence[FactRecord],
    first_contact: Mapping[str, str],
    last_in_folders: Mapping[str, str],
    corrections: Sequence[Correction],
    partner_folders: Sequence[str] = (),
    partner_prefix: str = "",
    settings: Settings = Settings(),
) -> Digest:
    """The digest of [start, end).

    `mail` holds every kept message from at least PROMOTE_LOOKBACK and the follow-up horizon
    before `start` up to `end` (vendor mail and the buyer's sent mail); `facts` every kept fact
    (invoices are compared with earlier months); `first_contact` each vendor's earliest message
    date; `last_in_folders` each folder's latest message date before `end`; `partner_folders`
    the partner folders that exist (quiet ones are named too); a partner is named by its
    folder without `partner_prefix` ("Vendors/Acme Inc." -> "Acme Inc.").
    """

    def partner_name(folder: str) -> str:
        return folder.removeprefix(partner_prefix) or folder

    start_s, end_s = iso(start), iso(end)
    week = [m for m in mail if start_s <= m.sent_at < end_s and m.role != SENT]
    sent = [m for m in mail if m.role == SENT and m.sent_at < end_s]
    place_of_vendor = _vendor_places(mail)
    names = _display_names(mail)

    partners: dict[str, PartnerSummary] = {}
    for folder in partner_folders:
        partners[folder] = PartnerSummary(folder, partner_name(folder))
    counts = Counter(m.role for m in week)
    for m in week:
        if m.role == PARTNER:
            if m.folder not in partners:
                partners[m.folder] = PartnerSummary(m.folder, partner_name(m.folder))
            partners[m.folder].messages += 1
    for folder, summary in partners.items():
        if folder in last_in_folders:
            summary.last_contact = _parse_time(last_in_folders[folder])
    for folder, threads in _awaiting_reply(week, sent).items():
        if folder in partners:
            partners[folder].awaiting_reply = threads

    flags = _flags(week, mail, facts, start=start, end=end, settings=settings)
    named = []
    for flag in flags:
        folder = place_of_vendor.get(flag.vendor, ("", ""))[0]
        name = partner_name(folder) if folder in partners else names.get(flag.vendor, flag.vendor)
        flag = Flag(flag.kind, flag.vendor, name, flag.text, flag.when)
        named.append(flag)
        if folder in partners:
            partners[folder].flags.append(flag)
    active = sorted(
        (p for p in partners.values() if p.messages or p.flags),
        key=lambda p: (-len(p.flags), -p.messages, p.name.lower()),
    )
    quiet = sorted(p.name for p in partners.values() if not (p.messages or p.flags))

    generic = _generic_rollup(week, first_contact, names, start_s)
    candidates = _candidates(mail, sent, place_of_vendor, names, end=end)
    total = {PARTNER: counts[PARTNER], GENERIC: counts[GENERIC], KEEP: counts[KEEP]}
    return Digest(
        account=account,
        start=start,
        end=end,
        week=week_key(end),
        partners=active,
        quiet_partners=quiet,
        generic=generic,
        flags=named,
        corrections=list(corrections),
        candidates=candidates,
        counts=total,
        bucket_bars=_bars(
            [
                ("Partners", total[PARTNER], "#2f6fb3"),
                ("Generic bucket", total[GENERIC], "#9aa5b1"),
                ("Left in inbox", total[KEEP], "#e0a030"),
            ]
        ),
        vendor_bars=_bars(
            [
                (name, count, "#2f6fb3" if role == PARTNER else "#9aa5b1")
                for (name, role), count in _top_vendors(week, names, partner_name)
            ]
        ),
    )


def _vendor_places(mail: Sequence[MailRecord]) -> dict[str, tuple[str, str]]:
    """vendor -> (folder, role): the partner folder of its latest message filed as a partner's,
    else where its latest message is. A partner stays a partner when the buyer sends one of
    its newsletters to the generic bucket."""
    latest: dict[str, tuple[str, str]] = {}
    partner: dict[str, tuple[str, str]] = {}
    for m in mail:  # oldest first: the latest wins
        if m.role != SENT and m.vendor:
            latest[m.vendor] = (m.folder, m.role)
            if m.role == PARTNER:
                partner[m.vendor] = (m.folder, m.role)
    return {**latest, **partner}


def _display_names(mail: Sequence[MailRecord]) -> dict[str, str]:
    """vendor -> the display name it most often signs with (else its key)."""
    seen: dict[str, Counter[str]] = defaultdict(Counter)
    for m in mail:
        if m.role != SENT and m.vendor:
            # "Acme via PayHub" is Acme: the platform's name is not the vendor's.
            name = VIA.split(m.sender_name, maxsplit=1)[0].strip()
            seen[m.vendor][name or m.vendor] += 1
    return {vendor: names.most_common(1)[0][0] for vendor, names in seen.items()}


def _no_reply_expected(m: MailRecord) -> bool:
    return m.bulk or any(word in m.sender.partition("@")[0] for word in _NO_REPLY)


def _awaiting_reply(
    week: Sequence[MailRecord], sent: Sequence[MailRecord]
) -> dict[str, list[Thread]]:
    """Partner threads whose latest message this week came from the vendor after anything the
    buyer sent in that thread; per folder, newest first."""
    answered: dict[str, str] = {}  # message id or thread id -> when the buyer last wrote
    for s in sent:
        for ref in {*s.refs.split(), s.thread}:
            if ref and s.sent_at > answered.get(ref, ""):
                answered[ref] = s.sent_at
    latest: dict[tuple[str, str], MailRecord] = {}
    for m in week:
        if m.role != PARTNER or _no_reply_expected(m):
            continue
        key = (m.folder, m.thread or m.message_id)
        if key not in latest or m.sent_at >= latest[key].sent_at:
            latest[key] = m
    out: dict[str, list[Thread]] = defaultdict(list)
    for (folder, thread), m in latest.items():
        replied = max(answered.get(thread, ""), answered.get(m.message_id, ""))
        if replied > m.sent_at:
            continue
        out[folder].append(Thread(m.subject, m.sender_name or m.sender, _parse_time(m.sent_at)))
    for threads in out.values():
        threads.sort(key=lambda t: t.when, reverse=True)
    return out


def _flags(
    week: Sequence[MailRecord],
    mail: Sequence[MailRecord],
    records: Sequence[FactRecord],
    *,
    start: datetime,
    end: datetime,
    settings: Settings,
) -> list[Flag]:
    facts = [to_fact(r) for r in records]

    def this_week(f: Fact) -> bool:
        return f.date is not None and start <= f.date < end

    flags: list[Flag] = []
    once: set[tuple[str, str, str]] = set()  # (kind, vendor, status): a notice repeated is one
    for f in facts:
        if f.kind == "bad_news" and this_week(f) and ("bad", f.vendor, f.status) not in once:
            once.add(("bad", f.vendor, f.status))
            what = _BAD_NEWS_WORDS.get(f.status, "Bad news")
            flags.append(Flag(BAD_NEWS, f.vendor, "", _sentence(what, f.detail), _day(f)))
    for anomaly in invoice_anomalies(
        [f for f in facts if f.date is not None and f.date < end],
        threshold=settings.invoice_change,
        months=settings.invoice_months,
    ):
        f = anomaly.fact
        if not this_week(f) or f.amount is None:
            continue
        direction = "above" if anomaly.change > 0 else "below"
        text = (
            f"Invoice {f.reference + ' ' if f.reference else ''}for "
            f"{_money(f.amount, f.currency)} is {abs(anomaly.change):.0%} {direction} the "
            f"average of the {anomaly.previous_count} before it "
            f"({_money(anomaly.average, f.currency)})"
        )
        flags.append(Flag(INVOICE, f.vendor, "", text, _day(f)))
    said_before_end = [f for f in facts if f.date is None or f.date < end]
    for f in upcoming_renewals(
        said_before_end, today=end.date(), within_days=settings.renewal_days
    ):
        assert f.due is not None
        days = (f.due - end.date()).days
        when = "today" if days == 0 else "tomorrow" if days == 1 else f"in {days} days"
        text = f"{_sentence(f.detail or 'Contract renewal')} ({when}, {f.due:%a %d %b %Y})"
        flags.append(Flag(RENEWAL, f.vendor, "", text, f.due))
    for f in _no_follow_up(facts, records, mail, end=end, days=settings.follow_up_days):
        assert f.date is not None
        days = (end - f.date).days
        what = f.detail or ("shipment" if f.kind == "shipment" else "support ticket")
        text = f"{_sentence(what)}: {days} days ago, and nothing from them about it since"
        flags.append(Flag(NO_FOLLOW_UP, f.vendor, "", text, _day(f)))
    for f in facts:
        if f.kind in ("wrong_name", "merge_field") and this_week(f):
            if (f.kind, f.vendor, "") in once:
                continue
            once.add((f.kind, f.vendor, ""))
            if f.kind == "wrong_name":
                text = f"{_sentence(f.detail or 'greeted by the wrong name')}: not your name"
            else:
                text = _sentence(f.detail or "leftover mail-merge field")
            flags.append(Flag(WRONG_NAME, f.vendor, "", text, _day(f)))
    flags.sort(key=lambda f: (FLAG_ORDER.index(f.kind), f.when or date.max, f.vendor))
    return flags


def _no_follow_up(
    facts: Sequence[Fact],
    records: Sequence[FactRecord],
    mail: Sequence[MailRecord],
    *,
    end: datetime,
    days: int,
) -> list[Fact]:
    """Open shipments and tickets of the last FOLLOW_UP_HORIZON with nothing later from their
    vendor about them: no fact naming the same order, tracking or ticket number (see
    facts.unanswered), no later message in the same thread, and no later fact naming a number
    said anywhere in that thread (a shipping notice that gives only a tracking number, in reply
    to the order confirmation, is closed by a delivery notice that names the order)."""
    horizon = end - FOLLOW_UP_HORIZON
    hash_of = {id(f): r.header_hash for f, r in zip(facts, records, strict=True)}
    recent = [f for f in facts if f.date is not None and horizon <= f.date < end]
    open_ = unanswered(recent, {}, today=end, days=days)
    place = {m.header_hash: (m.vendor, m.thread, m.sent_at) for m in mail}
    end_s = iso(end)
    latest_in_thread: dict[tuple[str, str], str] = {}
    for m in mail:
        if m.role != SENT and m.sent_at < end_s:
            key = (m.vendor, m.thread)
            latest_in_thread[key] = max(latest_in_thread.get(key, ""), m.sent_at)
    follow_ups = [f for f in recent if f.kind in ("shipment", "ticket")]
    ids_in_thread: dict[tuple[str, str], set[str]] = defaultdict(set)
    for f in follow_ups:
        where = place.get(hash_of[id(f)])
        if where is not None:
            ids_in_thread[(where[0], where[1])].update(reference_ids(f))
    out = []
    for f in open_:
        where = place.get(hash_of[id(f)])
        if where is None:
            out.append(f)
            continue
        vendor, thread, said = where
        if latest_in_thread.get((vendor, thread), "") > said:
            continue  # the vendor wrote again in that conversation
        ids = ids_in_thread[(vendor, thread)] | set(reference_ids(f))
        assert f.date is not None
        if any(
            g.date is not None
            and g.date > f.date
            and (g.vendor == f.vendor or g.status in ("delivered", "resolved"))
            and ids & set(reference_ids(g))
            for g in follow_ups
        ):
            continue
        out.append(f)
    return out


def _sentence(first: str, rest: str = "") -> str:
    """ "greeted as 'Jo'" -> "Greeted as 'Jo'"; with `rest`, "First: rest"."""
    text = f"{first}: {rest}" if rest else first
    return text[:1].upper() + text[1:]


def _day(f: Fact) -> date | None:
    return None if f.date is None else f.date.date()


def _generic_rollup(
    week: Sequence[MailRecord],
    first_contact: Mapping[str, str],
    names: Mapping[str, str],
    start: str,
) -> list[VendorSummary]:
    groups: dict[str, list[MailRecord]] = defaultdict(list)
    for m in week:
        if m.role == GENERIC:
            groups[m.vendor or m.sender].append(m)
    rows = [
        VendorSummary(
            vendor=vendor,
            name=names.get(vendor, vendor),
            messages=len(items),
            subject=items[-1].subject,
            new=first_contact.get(vendor, start) >= start,
        )
        for vendor, items in groups.items()
    ]
    rows.sort(key=lambda r: (not r.new, -r.messages, r.name.lower()))
    return rows


def _candidates(
    mail: Sequence[MailRecord],
    sent: Sequence[MailRecord],
    place_of_vendor: Mapping[str, tuple[str, str]],
    names: Mapping[str, str],
    *,
    end: datetime,
) -> list[Candidate]:
    """Vendors whose mail is in the generic bucket and to whom the buyer wrote at least
    PROMOTE_REPLIES times in the last PROMOTE_LOOKBACK."""
    since = iso(end - PROMOTE_LOOKBACK)
    generic_vendors = {v for v, (_, role) in place_of_vendor.items() if role == GENERIC}
    replies: Counter[str] = Counter()
    for s in sent:
        if s.sent_at < since:
            continue
        for vendor in {vendor_key(address) for address in s.recipients.split()}:
            if vendor in generic_vendors:
                replies[vendor] += 1
    messages = Counter(m.vendor for m in mail if m.role == GENERIC and m.sent_at >= since)
    out = [
        Candidate(vendor, names.get(vendor, vendor), count, messages[vendor])
        for vendor, count in replies.items()
        if count >= PROMOTE_REPLIES
    ]
    out.sort(key=lambda c: (-c.replies, c.name.lower()))
    return out


def _top_vendors(
    week: Sequence[MailRecord], names: Mapping[str, str], partner_name: Callable[[str], str]
) -> list[tuple[tuple[str, str], int]]:
    counts: Counter[tuple[str, str]] = Counter()
    for m in week:
        if m.role in (PARTNER, GENERIC) and m.vendor:
            label = partner_name(m.folder) if m.role == PARTNER else names.get(m.vendor, m.vendor)
            counts[(label, m.role)] += 1
    return counts.most_common(TOP_VENDORS)


def _bars(rows: Sequence[tuple[str, int, str]]) -> list[Bar]:
    longest = max((count for _, count, _ in rows), default=0)
    return [
        Bar(label, count, max(1, round(100 * count / longest)) if count else 0, colour)
        for label, count, colour in rows
    ]


# -- rendering ------------------------------------------------------------------------------------


@cache
def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("triage", "templates"),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["day"] = lambda d: "" if d is None else f"{d:%a %d %b}"
    env.filters["stamp"] = lambda d: "never" if d is None else f"{d:%a %d %b %Y}"
    return env


def _context(digest: Digest) -> dict[str, object]:
    period = f"{digest.start:%a %d %b} to {(digest.end - timedelta(seconds=1)):%a %d %b %Y}"
    return {
        "d": digest,
        "account_line": f"triage - {digest.account} - {period}",
        "PARTNER": PARTNER,
        "GENERIC": GENERIC,
        "KEEP": KEEP,
        "period": period,
    }


def render_html(digest: Digest) -> str:
    """The digest as one self-contained HTML page (inline CSS, no scripts, no remote content);
    everything taken from mail is escaped."""
    return _environment(True).get_template("digest.html").render(_context(digest))


def render_text(digest: Digest) -> str:
    return _environment(False).get_template("digest.txt").render(_context(digest))


def message_id(account: str, week: str, domain: str) -> str:
    """The same for one account and week, so that delivering twice can be noticed."""
    safe = "".join(c if c.isalnum() or c in "-." else "-" for c in account)
    return f"{DIGEST_ID_PREFIX}{week}.{safe}@{domain or 'triage.invalid'}>"


def mime_message(
    digest: Digest, *, sender: str, recipient: str, message_id: str, html: str, text: str
) -> bytes:
    """multipart/alternative (text, then HTML) with the stable Message-ID; CRLF line ends."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = email.utils.formataddr(("triage", sender))
    message["To"] = recipient
    message["Subject"] = digest.subject
    message["Date"] = email.utils.format_datetime(digest.end.astimezone(UTC))
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message["X-Triage-Digest"] = digest.week
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message.as_bytes()

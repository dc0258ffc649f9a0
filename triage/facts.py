"""Facts for the weekly digest, read from vendor mail, and the rules that turn them into flags.

`extract(message)` finds, in one parsed message:

- ``invoice``: the total a bill asks for (or a receipt confirms), its currency, invoice number
  and due date;
- ``renewal``: renewal, expiry and contract-end dates, auto-renew clauses and notice windows;
- ``bad_news``: termination, price increase, end of life/support, discontinuation;
- ``shipment`` and ``ticket``: shipped/delivered/delayed orders and opened/updated/resolved
  support cases and incidents;
- ``wrong_name`` and ``merge_field``: a greeting to someone who is not the buyer, or a mail-merge
  placeholder (``{FirstName}``, ``[Company]``...) left in the text.

The flags are pure functions over facts kept in the store: `invoice_anomalies`,
`upcoming_renewals` and `unanswered`.

Everything here is conservative on purpose: a digest that flags noise gets ignored, so a fact is
left out whenever the wording is not clearly one of the patterns below. Pure and stdlib-only: no
I/O, and no message text is ever logged.

Rules worth knowing (the tests pin each one down):

- **Vendor key**: the organisation domain of the sender, ``billing@mail.acme.com`` -> ``acme.com``
  (the last two labels; three under suffixes such as ``co.uk``). Tenants of shared helpdesk
  platforms keep their subdomain (``acme.zendesk.com``); free-mail senders (gmail.com...) are
  keyed by their full address, since their domain says nothing about who they work for. Mail a
  billing platform sends for a vendor ("Acme via PayHub", Stripe) belongs to the vendor in its
  Reply-To (see `vendor_of`). Mail from the buyer's own domain (see `buyer_addresses`) gives
  facts only when it forwards vendor mail, and those belong to the forwarded sender.
- **Numeric dates**: ``31.03.2027`` is always day first. In ``a/b/yyyy``, ``a`` > 12 means day
  first and ``b`` > 12 month first. When both could be a month: another unambiguous numeric date
  in the same message decides; else, if only one reading is at most a month before the message,
  that one (every date read here looks ahead: renewals, deadlines, due and effective dates); else
  the currency (``$``/USD: month first; EUR, GBP, CHF...: day first); with no cue at all the date
  is skipped. A date without a year takes the year that puts it at most a month before the
  message.
- **Amounts**: ``12,450.00``, ``12.450,00``, ``12 450,00``, ``12'450.00``, ``$3.2k``; a single
  separator followed by exactly three digits groups thousands (``1.200 €`` is 1200). A bare ``$``
  is USD (CAD, AUD, NZD, SGD, HKD or MXN when the sender's domain is in that country).
- **Invoices**: only in a message that is clearly a bill or receipt (an invoice number, "amount
  due", a billing word in the subject...), and only an amount tied to a total-like label:
  "amount/balance/total due" beats "total" and "payment of", which beat "in the amount of",
  "for" and an amount in the subject. Line items, tax, subtotals, order and quote totals, savings
  and the open balance of a statement of account are never taken. Receipts and payment
  confirmations get ``status="paid"``. Credit notes and refunds are left out: they are not bills,
  and a negative amount would distort the averages.
- **Bad news** is read from the subject (unless it is a reply or forward) and from the new text of
  the body (quoted replies are dropped). A negation shortly before the cue ("no price increase",
  "we will not terminate") or a technical or marketing object ("terminate the SSL connection",
  "end-of-life laptops", "end of life cycle webinar") cancels it, as do research and marketing
  ("how to", "survey", "webinar"...). A price increase must be the sender's or the buyer's ("we",
  "your", "effective ...", "at renewal"), not the market's. One fact per message for
  termination, discontinuation or end of life, plus one for a price increase.
- **Greetings** are compared with `buyer_names` (the first name; the surname after Mr/Ms/Dr),
  ignoring case and accents. A prefix of three letters or more of a configured name ("Dan" for
  "Daniel") is taken as the buyer, since flagging it would be noise; other nicknames must be
  configured. No wrong-name fact when the buyer is not the only address in To.
- **Scheduled maintenance windows** (downtime) are not facts: "maintenance" counts only as a
  contract ("maintenance contract ends ...").
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from itertools import pairwise

from triage.message import Message

__all__ = [
    "KINDS",
    "VIA",
    "Anomaly",
    "Fact",
    "extract",
    "invoice_anomalies",
    "reference_ids",
    "unanswered",
    "upcoming_renewals",
    "vendor_key",
    "vendor_of",
]

# `date` is also a field of Fact, which hides the type inside the class body.
_Day = date

#: Every value of Fact.kind.
KINDS = ("invoice", "renewal", "bad_news", "shipment", "ticket", "wrong_name", "merge_field")


@dataclass(frozen=True, slots=True)
class Fact:
    """One thing a message says that the digest may flag.

    `status` by kind: invoice ``""`` (a bill) or ``"paid"`` (a receipt or payment confirmation);
    renewal ``"auto_renew"``, ``"expires"`` or ``"notice_window"`` (`due` is then the deadline to
    give notice, when it can be computed); bad_news ``"termination"``, ``"discontinued"``,
    ``"end_of_life"`` or ``"price_increase"``; shipment ``"shipped"``, ``"delivered"``,
    ``"delayed"`` or ``"ordered"`` (an order confirmation: no news, but it ties an order number
    to a PO number); ticket ``"opened"``, ``"updated"`` or ``"resolved"``.

    `reference` holds the identifiers that match follow-ups: an invoice, ticket or contract
    number; for a shipment its order numbers then its tracking number, separated by spaces (see
    `reference_ids`).
    """

    kind: str
    vendor: str  # organisation domain of the sender (see vendor_key), never a person's name
    date: datetime | None  # when it was said: the message's date
    amount: Decimal | None = None
    currency: str = ""  # ISO 4217 code
    due: _Day | None = None  # renewal/expiry/end/effective date, notice deadline, invoice due date
    detail: str = ""  # short human text for the digest
    reference: str = ""
    status: str = ""


@dataclass(frozen=True, slots=True)
class Anomaly:
    """An invoice far from its vendor's recent average."""

    fact: Fact
    average: Decimal  # mean of the previous invoices it is compared with
    change: float  # (amount - average) / average: +0.62 is 62% higher
    previous_count: int  # how many invoices the average is made of


# -- vendor key -----------------------------------------------------------------------------------

# Second-level labels under which registrations happen (co.uk, com.au...): a short list instead of
# the Public Suffix List, which would be a dependency for a handful of real cases.
_SECOND_LEVEL = frozenset((
    "co", "com", "net", "org", "gov", "edu", "ac", "ltd", "plc", "me", "ne", "or", "gob", "gouv",
    "nic", "mil", "sch",
))  # fmt: skip
# Shared helpdesk platforms whose customers each get a subdomain: the tenant is the vendor.
_TENANT_PLATFORMS = (
    "zendesk.com",
    "freshdesk.com",
    "freshservice.com",
    "service-now.com",
    "servicenowservices.com",
    "atlassian.net",
    "my.salesforce.com",
    "helpscoutapp.com",
    "kayako.com",
    "happyfox.com",
)
_FREEMAIL = frozenset(
(
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
    "yahoo.com", "ymail.com", "icloud.com", "me.com", "mac.com", "aol.com", "proton.me",
    "protonmail.com", "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com", "yandex.ru",
    "yandex.com", "qq.com", "163.com", "126.com", "zoho.com", "fastmail.com", "hey.com",
    "t-online.de", "orange.fr", "free.fr", "laposte.net", "libero.it", "btinternet.com",
))  # fmt: skip


@lru_cache(maxsize=4096)
def vendor_key(address: str) -> str:
    """The organisation key of a sender address (see the module notes); "" without a domain.
    Cached: the same few senders come back in every batch."""
    address = address.strip().lower()
    domain = address.rpartition("@")[2].strip(".")
    if not domain:
        return ""
    if domain in _FREEMAIL:
        return address
    labels = domain.split(".")
    for platform in _TENANT_PLATFORMS:
        if domain.endswith("." + platform):
            return ".".join(labels[-(platform.count(".") + 2) :])
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


# Billing, e-signature and payment platforms that send mail for a vendor ("Acme via PayHub"),
# with the vendor's own address in Reply-To.
_SENDING_PLATFORMS = frozenset(
(
    "stripe.com", "intuit.com", "xero.com", "bill.com", "paypal.com", "docusign.net",
    "docusign.com", "freshbooks.com", "chargebee.com", "recurly.com", "zuora.com", "paddle.com",
    "invoice2go.com", "squareup.com", "coupa.com", "ariba.com", "tipalti.com", "melio.com",
))  # fmt: skip
#: " via " in a display name: a platform sending for a vendor ("Acme via PayHub").
VIA = re.compile(r"\s(?:via|über|par)\s", re.I)


def vendor_of(message: Message) -> str:
    """The vendor key of a message: its sender's (see vendor_key), except for mail a billing
    platform sends for a vendor ("Acme via PayHub", Stripe, Bill.com...): the key of the
    vendor's own address in Reply-To, else "<platform>:<vendor name>" ("payhub.com:acme"), so
    that two vendors billing through one platform stay apart.
    """
    key = vendor_key(message.sender)
    via = VIA.search(message.sender_name)
    if not (via or key in _SENDING_PLATFORMS):
        return key
    reply = message.reply_to
    other = vendor_key(reply) if "@" in reply else ""
    if other and other != key and "@" not in other:  # not a free-mail address
        return other
    if via:
        name = re.sub(r"[^\w]+", "-", _fold(message.sender_name[: via.start()])).strip("-")
        if name:
            return f"{key}:{name}"
    return key


def reference_ids(fact: Fact) -> tuple[str, ...]:
    """The identifiers in a fact's reference (an order and its tracking number, say)."""
    return tuple(fact.reference.split())


# -- text preparation -----------------------------------------------------------------------------

_WS = re.compile(r"[ \t\u00a0\u202f\u2007]+")
# Where the quoted part of a reply starts: what follows was said before (and already filed).
_REPLY_MARK = re.compile(
    r"^(?:On\b[^\n]{0,200}(?:\n[^\n]{0,120})?\bwrote:[ \t]*$"
    r"|Am\b[^\n]{0,200}\bschrieb[^\n]{0,80}:[ \t]*$"
    r"|Le\b[^\n]{0,200}\ba écrit[ \t]*:[ \t]*$"
    r"|-{2,}[ \t]*(?:Original Message|Ursprüngliche Nachricht|Message d'origine)[ \t]*-{2,}"
    r"|_{8,}[ \t]*$"
    r"|From:[^\n]*\n(?:Sent|Date):)",
    re.M | re.I,
)
# The same markers inside HTML converted to a single line of text.
_INLINE_REPLY_MARK = re.compile(
    r"\sOn [^<>]{5,160}? wrote:|\sFrom: [^<>]{3,160}? Sent: |-{2,} ?Original Message ?-{2,}", re.I
)
_FORWARD_MARK = re.compile(
    r"-{3,}[ \t]*Forwarded message[ \t]*-{3,}|Begin forwarded message:"
    r"|-{2,}[ \t]*Original Message[ \t]*-{2,}|^From:[^\n]*\n(?:Sent|Date):",
    re.I | re.M,
)
_ADDRESS = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_REPLY_SUBJECT = re.compile(r"^\s*(?:re|aw|sv|antw|fwd?|fw|wg|tr)\s*(?:\[\d+\])?\s*:", re.I)


def _new_text(text: str, html_only: bool) -> str:
    """The text the sender wrote now: quoted lines and the quoted original of a reply dropped."""
    m = _REPLY_MARK.search(text)
    if m:
        text = text[: m.start()]
    elif html_only:
        m = _INLINE_REPLY_MARK.search(text)
        if m:
            text = text[: m.start()]
    if ">" in text:
        text = "\n".join(line for line in text.split("\n") if not line.lstrip().startswith(">"))
    return text


def _forwarded(text: str) -> tuple[str, str, str]:
    """(sender address, subject, body) of the message forwarded in `text`, or ("", "", "")."""
    m = _FORWARD_MARK.search(text)
    if not m:
        return "", "", ""
    rest = text[m.start() :]
    head = re.search(r"From:[ \t]*([^\n]{0,200})", rest[:600])
    addr = _ADDRESS.search(head.group(1)) if head else None
    if head is None or addr is None:
        return "", "", ""
    # The forwarded header block ends at the first blank line after its From: line.
    blank = re.search(r"\n[ \t]*\n", rest[head.end() :])
    cut = head.end() + (blank.end() if blank else 0)
    subject = re.search(r"^Subject:[ \t]*([^\n]*)", rest[head.start() : cut], re.M)
    return addr.group(0).lower(), subject.group(1).strip() if subject else "", rest[cut:]


# A sentence ends at . ! ? before a capital letter (not before a digit: "Mar. 31"; not after
# "No."), at a blank line, before a list item, and around a "Label: value" line of a table.
# Other line breaks are a mail client's wrapping and do not end a sentence. Every branch starts
# with a character class, so the regex engine skips quickly to candidate positions.
_SENTENCE_BREAK = re.compile(
    r"[.!?](?<![Nn]o\.)(?<!\b[A-Z]\.)\s+(?=[A-Z\"“(\[])|\n[ \t]*\n\s*|\n(?=[ \t]*[-*•·][ \t])"
    r"|\n(?=[ \t]*[A-Z][\w /&().'-]{0,40}:[ \t])|\n(?=[ \t]*[A-Z][\w /&().'-]{0,40}:[^\n]{0,60}\n)"
)
# Where a sentence ends, to cut the context before an amount.
_SENT_END = re.compile(r"(?<![Nn]o)(?<!\b[A-Z])[.!?][ \t]+(?=[A-Z\"“(])|\n[ \t]*\n")


def _find(low: str, words: Sequence[str]) -> list[int]:
    """Where any of `words` occurs in `low`: str.find is many times faster than a regex scan."""
    out = []
    for word in words:
        i = low.find(word)
        while i >= 0:
            out.append(i)
            i = low.find(word, i + 1)
    return out


def _fold(name: str) -> str:
    """Lower case without accents, for comparing names."""
    return "".join(
        c for c in unicodedata.normalize("NFKD", name.casefold()) if not unicodedata.combining(c)
    )


# -- money ----------------------------------------------------------------------------------------

_CODES = (
    "USD", "EUR", "GBP", "CHF", "JPY", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN", "CZK",
    "HUF", "INR", "CNY", "HKD", "SGD", "ZAR", "BRL", "MXN", "AED", "SAR", "KRW", "TRY", "ILS",
    "RON",
)  # fmt: skip
_PREFIX_SYMBOLS = {
    "US$": "USD", "U.S.$": "USD", "C$": "CAD", "CA$": "CAD", "CAN$": "CAD", "A$": "AUD",
    "AU$": "AUD", "NZ$": "NZD", "HK$": "HKD", "S$": "SGD", "SG$": "SGD", "R$": "BRL",
    "MX$": "MXN", "€": "EUR", "£": "GBP", "₹": "INR", "₩": "KRW", "₪": "ILS", "₺": "TRY",
    "Fr.": "CHF", "SFr.": "CHF", "CN¥": "CNY", "RMB": "CNY",
}  # fmt: skip
_SUFFIX_WORDS = {
    "€": "EUR", "£": "GBP", "euro": "EUR", "euros": "EUR", "us dollars": "USD",
    "u.s. dollars": "USD", "canadian dollars": "CAD", "australian dollars": "AUD",
    "pounds sterling": "GBP", "sterling": "GBP", "swiss francs": "CHF", "yen": "JPY",
}  # fmt: skip
# A bare "$" (or "dollars") is read by the sender's country where that is not the US.
_DOLLAR_BY_TLD = {"ca": "CAD", "au": "AUD", "nz": "NZD", "sg": "SGD", "hk": "HKD", "mx": "MXN"}
_MULTIPLIERS = {
    "k": 1_000, "thousand": 1_000, "m": 1_000_000, "mm": 1_000_000, "mn": 1_000_000,
    "million": 1_000_000, "mio": 1_000_000, "bn": 1_000_000_000, "billion": 1_000_000_000,
}  # fmt: skip

_NUM = r"\d{1,3}(?:[,.'’ \u00a0\u202f]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_MULT = r"(?:[ \u00a0]?(?:k|K|m|M|MM|mn|bn|BN|million|billion|thousand|Mio\.?)\b)"
_PRE = (
    r"U\.S\.\$|US\$|CAN\$|CA\$|C\$|AU\$|A\$|NZ\$|HK\$|SG\$|S\$|R\$|MX\$|CN¥|SFr\.|Fr\.|RMB|"
    + "|".join(_CODES)
    + r"|[$€£¥₹₩₪₺]"
)
_SUF = (
    "|".join(_CODES)
    + r"|€|£|\$|euros?|(?:US |U\.S\. |Canadian |Australian )?dollars|pounds sterling|sterling"
    r"|Swiss francs|yen"
)
_MONEY = re.compile(
    rf"(?<![\w$€£¥.,])(?P<neg>-|−|\()?(?:(?P<pre>{_PRE})[ \u00a0\u202f]?(?P<n1>{_NUM})"
    rf"(?P<m1>{_MULT})?|(?P<n2>{_NUM})(?P<m2>{_MULT})?[ \u00a0\u202f]?(?P<suf>{_SUF})"
    r"(?![A-Za-z]))"
)
_SPACE_IN_NUMBER = re.compile(r"[ \u00a0\u202f]")


def _number(raw: str) -> Decimal | None:
    """A number written with the thousands separators of any convention, or None."""
    s = _SPACE_IN_NUMBER.sub(" ", raw).replace("’", "'")
    seps = [(i, c) for i, c in enumerate(s) if not c.isdigit()]
    if not seps:
        return Decimal(s)
    last_i, last_c = seps[-1]
    tail = len(s) - last_i - 1
    decimal_sep = ""
    if last_c in ".," and tail in (1, 2):
        decimal_sep, seps = last_c, seps[:-1]
    elif tail != 3:
        return None
    kinds = {c for _, c in seps}
    if len(kinds) > 1 or decimal_sep in kinds:
        return None
    # Groups between thousands separators have exactly three digits; the first one up to three.
    bounds = [i for i, _ in seps] + [last_i if decimal_sep else len(s)]
    if seps and (bounds[0] > 3 or any(b - a != 4 for a, b in pairwise(bounds))):
        return None
    digits = "".join(c for c in s if c.isdigit())
    if decimal_sep:
        digits = digits[:-tail] + "." + digits[-tail:]
    try:
        return Decimal(digits)
    except InvalidOperation:
        return None


@dataclass(frozen=True, slots=True)
class _Money:
    amount: Decimal
    currency: str
    start: int
    end: int
    negative: bool


#: Amounts read per message at most: a bill has a few dozen; a price list is not a bill.
_MAX_AMOUNTS = 200


def _money(text: str, sender_domain: str) -> list[_Money]:
    """The amounts with a currency in `text` (the first _MAX_AMOUNTS)."""
    out: list[_Money] = []
    tld = sender_domain.rpartition(".")[2]
    dollar = _DOLLAR_BY_TLD.get(tld, "USD")
    for m in _MONEY.finditer(text):
        if len(out) >= _MAX_AMOUNTS:
            break
        raw = m.group("n1") or m.group("n2") or ""
        if _SPACE_IN_NUMBER.search(raw) and not (m.group("suf") or re.search(r"[.,]\d\d?$", raw)):
            # Space-grouped thousands only with decimals or a currency after the number, so
            # "$5 100 users" is 5, not 5100.
            raw = _SPACE_IN_NUMBER.split(raw)[0]
        amount = _number(raw)
        if amount is None:
            continue
        mult = (m.group("m1") or m.group("m2") or "").strip().rstrip(".").lower()
        amount *= _MULTIPLIERS.get(mult, 1)
        sym = m.group("pre") or m.group("suf")
        if sym in ("$", "dollars"):
            cur = dollar
        elif sym == "¥":
            cur = "CNY" if tld == "cn" else "JPY"
        else:
            cur = _PREFIX_SYMBOLS.get(sym) or _SUFFIX_WORDS.get(sym.lower()) or sym.upper()
        out.append(_Money(amount, cur, m.start(), m.end(), bool(m.group("neg"))))
    return out


# -- dates ----------------------------------------------------------------------------------------

_MONTH_NAMES = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12, "jan": 1,
    "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10,
    "nov": 11, "dec": 12, "januar": 1, "februar": 2, "märz": 3, "mai": 5, "juni": 6, "juli": 7,
    "oktober": 10, "dezember": 12, "janvier": 1, "février": 2, "avril": 4, "juin": 6,
    "juillet": 7, "août": 8, "septembre": 9, "octobre": 10, "novembre": 11, "décembre": 12,
}  # fmt: skip
# French month names are written in lower case and are not English words; the others must be
# capitalised ("may", "mar" and "march" are words).
_LOWER_OK = frozenset((
    "janvier", "février", "avril", "juin", "juillet", "août", "septembre", "octobre", "novembre",
    "décembre",
))  # fmt: skip


def _month(group: str) -> str:
    names = "|".join(sorted(_MONTH_NAMES, key=len, reverse=True))
    return rf"(?P<{group}>(?:{names})(?![a-zäéû]))\.?"


_WEEKDAY = r"(?:(?:Mon|Tue|Tues|Wed|Thu|Thur|Thurs|Fri|Sat|Sun)(?:day|nesday|sday|urday)?\.?,?\s+)?"
_DATE = re.compile(
    r"(?P<iso>\b(?P<iy>20\d\d)-(?P<im>[01]?\d)-(?P<id>[0-3]?\d)\b)"
    rf"|(?P<mdy>\b{_WEEKDAY}{_month('m1')}\s+(?P<d1>[0-3]?\d)(?:st|nd|rd|th)?\b"
    r"(?:,?\s+(?P<y1>20\d\d)\b)?)"
    rf"|(?P<dmy>\b(?P<d2>[0-3]?\d)(?:st|nd|rd|th)?\.?\s+(?:of\s+)?{_month('m2')}"
    r"(?:,?\s+(?P<y2>20\d\d)\b)?)"
    rf"|(?P<dash>\b(?P<d3>[0-3]?\d)-{_month('m3')}-(?P<y3>20\d\d|\d\d)\b)"
    r"|(?P<num>\b(?P<a>[0-3]?\d)(?P<sep>[./-])(?P<b>[0-3]?\d)(?P=sep)(?P<y4>20\d\d)\b"
    r"|\b(?P<a5>[0-3]?\d)/(?P<b5>[0-3]?\d)/(?P<y5>\d\d)\b(?![/.-]\d))"
    rf"|(?P<eom>\bend of (?:the month of )?{_month('m6')}(?:,?\s+(?P<y6>20\d\d))?)"
    r"|(?P<rel>\b(?:in|within)\s+(?P<rn>\d{1,3}|one|two|three|four|six|twelve)\s+"
    r"(?P<ru>days?|weeks?|months?)\b|\b(?P<rn2>\d{1,3})\s+(?P<ru2>days?|weeks?|months?)\s+from\s+"
    r"(?:now|today|the date of this (?:e-?mail|message|notice))\b)",
    re.I,
)
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "six": 6, "twelve": 12}
_NUMERIC_DATE = re.compile(r"\b([0-3]?\d)[/-]([0-3]?\d)[/-](?:20)?\d\d\b")
_US_MONEY = re.compile(r"US\$|\$\s?\d|\bUSD\b")
_OTHER_MONEY = re.compile(r"€|£|\b(?:EUR|GBP|CHF|SEK|NOK|DKK|PLN|INR|AUD|NZD|ZAR)\b")


@dataclass(frozen=True, slots=True)
class _Date:
    value: date
    start: int
    end: int
    relative: bool = False


def _date_order(text: str) -> str:
    """How this message writes a/b/yyyy: "dmy!"/"mdy!" when another numeric date in it shows
    the order, "dmy"/"mdy" when only its currency suggests one, "" when nothing does.
    """
    orders = set()
    for m in _NUMERIC_DATE.finditer(text):
        a, b = int(m.group(1)), int(m.group(2))
        if a > 12 >= b:
            orders.add("dmy!")
        elif b > 12 >= a:
            orders.add("mdy!")
    if len(orders) == 1:
        return orders.pop()
    us, other = bool(_US_MONEY.search(text)), bool(_OTHER_MONEY.search(text))
    if us != other:
        return "mdy" if us else "dmy"
    return ""


def _year_for(month: int, day: int, base: date | None) -> date | None:
    """A date written without a year: the one no more than a month before `base`."""
    if base is None:
        return None
    for year in (base.year, base.year + 1):
        d = _make(year, month, day)
        if d is None:
            return None
        if d >= base - timedelta(days=31):
            return d
    return None


def _make(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _add_months(d: date, n: int) -> date:
    month = d.month - 1 + n
    year = d.year + month // 12
    month = month % 12 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _dates(text: str, base: date | None, order: Callable[[], str]) -> list[_Date]:
    """Every date in `text`; `base` is the message's date; `order` gives _date_order's answer
    (asked only for an ambiguous numeric date, since it reads the whole message).
    """
    out = []
    for m in _DATE.finditer(text):
        try:
            d = _date_of(m, base, order)
        except (OverflowError, ValueError):  # "in 30 days" from a message dated 9999-12-31
            continue
        if d is not None:
            out.append(_Date(d, m.start(), m.end(), relative=bool(m.group("rel"))))
    return out


def _date_of(m: re.Match[str], base: date | None, order: Callable[[], str]) -> date | None:
    """The date one match of _DATE stands for, or None."""
    g = m.group
    if g("iso"):
        return _make(int(g("iy")), int(g("im")), int(g("id")))
    if g("num"):
        if g("a"):
            a, b, year, sep = int(g("a")), int(g("b")), int(g("y4")), g("sep")
        else:
            a, b, year, sep = int(g("a5")), int(g("b5")), 2000 + int(g("y5")), "/"
        if sep == "." or a > 12:
            return _make(year, b, a)
        if b > 12 or a == b:
            return _make(year, a, b)
        o = order()
        day_first, month_first = _make(year, b, a), _make(year, a, b)
        if not o.endswith("!") and base is not None:
            # Every date read here looks ahead (renewal, deadline, due or effective date): when
            # only one reading is at most a month before the message, that is the one.
            recent = base - timedelta(days=31)
            ahead = [d for d in (day_first, month_first) if d is not None and d >= recent]
            if len(ahead) == 1:
                return ahead[0]
        return day_first if o.startswith("dmy") else month_first if o.startswith("mdy") else None
    if g("rel"):
        if base is None:
            return None
        n_s, unit = (g("rn"), g("ru").lower()) if g("rn") else (g("rn2"), g("ru2").lower())
        n = _NUMBER_WORDS.get(n_s.lower()) or int(n_s)
        if unit.startswith("day"):
            return base + timedelta(days=n)
        if unit.startswith("week"):
            return base + timedelta(weeks=n)
        return _add_months(base, n)
    key = "1" if g("mdy") else "2" if g("dmy") else "3" if g("dash") else "6"
    word = g("m" + key)
    if word[0].islower() and word.lower() not in _LOWER_OK:
        return None
    month = _MONTH_NAMES[word.lower()]
    year_s = g("y" + key)
    if key == "6":  # "end of March 2027": the last day of the month
        first = _make(int(year_s), month, 1) if year_s else _year_for(month, 1, base)
        return first.replace(day=calendar.monthrange(first.year, month)[1]) if first else None
    if year_s:
        return _make(int(year_s) + (2000 if len(year_s) == 2 else 0), month, int(g("d" + key)))
    return _year_for(month, int(g("d" + key)), base)


# -- shared context -------------------------------------------------------------------------------


class _Ctx:
    """What the extractors need about one message, computed once and only when asked for.

    The text is the subject, a blank line and the body. Extractors look for their keywords
    with `sentences_with`, so their regexes run on a few sentences rather than on the body.
    """

    def __init__(
        self, subject: str, text: str, vendor: str, when: datetime | None, domain: str
    ) -> None:
        self.subject = subject
        self.text = text
        self.vendor = vendor
        self.when = when
        self.base = when.date() if when else None
        self.domain = domain
        # A reply's or forward's subject repeats what an earlier message said.
        self.reply = bool(_REPLY_SUBJECT.match(subject))
        self.own_subject = "" if self.reply else subject
        self.all_text = subject + "\n\n" + text
        low = self.all_text.lower()
        if len(low) != len(self.all_text):  # "İ".lower() is two characters: keep offsets aligned
            low = "".join(c.lower()[:1] for c in self.all_text)
        self.low = low
        self._breaks: list[int] | None = None
        self._sentences: dict[int, str] = {}
        self._order: str | None = None

    def _sentence(self, i: int) -> str:
        """The i-th sentence, whitespace collapsed."""
        text = self._sentences.get(i)
        if text is None:
            assert self._breaks is not None
            start = self._breaks[i - 1] if i else 0
            end = self._breaks[i] if i < len(self._breaks) else len(self.all_text)
            text = _WS.sub(" ", self.all_text[start:end].replace("\n", " ")).strip()
            self._sentences[i] = text
        return text

    def sentences_with(self, words: Sequence[str], *, subject: bool = True) -> list[str]:
        """The sentences that contain one of `words` (lower case), in text order.

        The subject is the first sentence; `subject=False` leaves it out when it is a reply's
        or a forward's, which repeats an earlier message.
        """
        hits = _find(self.low, words)
        if not subject and self.reply:
            hits = [h for h in hits if h > len(self.subject)]
        if not hits:
            return []
        if self._breaks is None:
            self._breaks = [m.end() for m in _SENTENCE_BREAK.finditer(self.all_text)]
        indexes = sorted({bisect_right(self._breaks, h) for h in hits})
        return [t for t in map(self._sentence, indexes) if t]

    def order(self) -> str:
        if self._order is None:
            self._order = _date_order(self.all_text)
        return self._order

    def dates(self, text: str) -> list[_Date]:
        return _dates(text, self.base, self.order)

    def fact(
        self,
        kind: str,
        *,
        amount: Decimal | None = None,
        currency: str = "",
        due: date | None = None,
        detail: str = "",
        reference: str = "",
        status: str = "",
    ) -> Fact:
        return Fact(kind, self.vendor, self.when, amount, currency, due, detail, reference, status)


_NEGATION = re.compile(
    r"\b(?:no|not|never|without|nor|neither|cannot|avoid|freeze|frozen|unchanged|rather than"
    r"|instead of|lock(?:ed)? in|guarantee[sd]?|protect(?:s|ed|ion)?(?: you)? from|before|beat"
    r"|ahead of)\b"
    r"[^.;:!?]{0,30}$|n't\b[^.;:!?]{0,20}$",
    re.I,
)


def _negated(text: str, pos: int) -> bool:
    """A negation shortly before `pos` ("no price increase", "we will not ...", "lock in ...")."""
    return bool(_NEGATION.search(text, max(0, pos - 45), pos))


# -- invoices -------------------------------------------------------------------------------------

_INVOICE_SUBJECT = re.compile(
    r"\b(?:invoices?|inv\b|bill\b|billing statement|statement|receipt|payment|remittance"
    r"|past due|overdue|rechnung|facture|factura|fattura)",
    re.I,
)
_INVOICE_BODY = re.compile(
    r"\binvoice\s*(?:no\.?|number|num|nr\.?|#|id|:)\s*[A-Z0-9]|\binvoice\s+#?[A-Z]{0,5}-?\d"
    r"|\b(?:amount|balance|total|payment)\s+(?:now\s+)?due\b|\bamount payable\b"
    r"|\breceived your payment\b|\bpayment of\b[^.]{0,40}\b(?:received|applied|posted)"
    r"|\b(?:your|our|the attached|attached|this|new|monthly) (?:invoice|bill)\b"
    r"|\binvoice\b[^.]{0,40}\b(?:attached|available|issued|enclosed|is ready)\b"
    r"|\b(?:rechnung(?:snummer)?|facture)\b",
    re.I,
)
# Credit notes and refunds: in the subject, or said as such at the top of the body (a line
# about the refund policy further down is not one).
_CREDIT_SUBJECT = re.compile(r"\b(?:credit (?:note|memo)|refund|gutschrift|avoir)\b", re.I)
_CREDIT_BODY = re.compile(
    r"\b(?:credit (?:note|memo)|gutschrift|your refund|refund of|has been refunded)\b", re.I
)
# A receipt or payment confirmation, rather than a bill ("please confirm receipt of this
# invoice" is a bill: the body needs more than the word).
_RECEIPT_SUBJECT = re.compile(
    r"\b(?:receipt|payment (?:received|confirmation|successful)|received your payment"
    r"|thank you for your payment)",
    re.I,
)
_RECEIPT_BODY = re.compile(
    r"\b(?:payment (?:received|confirmation|successful)|received your payment"
    r"|thank you for your payment|remittance of|payment of [^.]{0,40}(?:received|applied|posted)"
    r"|amount paid|this is your receipt)",
    re.I,
)
_AMOUNT_DUE = re.compile(r"\b(?:amount|balance|total) due\b|\bplease pay\b", re.I)
# The label just before an amount -> (rank, is a payment). The first pattern that matches wins;
# the highest rank in the message is the total; rank 0 is never the total.
_CONNECT = r"[\s:=\-–(]*(?:is|was|of|comes to|amounts to|totals)?[\s:=\-–]*$"
_LABELS: tuple[tuple[re.Pattern[str], int, bool], ...] = tuple(
    (re.compile(p + _CONNECT, re.I), rank, paid)
    for p, rank, paid in (
        (
            r"\b(?:sub-?total|tax(?:es)?|vat|gst|hst|mwst|ust|sales tax|shipping|freight|handling"
            r"|discount|credit|deposit|savings?|save|saved|unit price|price per \w+|each|per unit"
            r"|list price|open balance|outstanding balance|account balance|current balance"
            r"|balance forward|previous balance|paid to date|(?:order|quote|quotation|estimate"
            r"|proposal|cart|budget|po|contract) (?:total|amount|value)|net amount|net"
            r"|montant ht|total ht|tva|nettobetrag)",
            0,
            False,
        ),
        (
            r"\b(?:total\s+)?amount\s+(?:now\s+)?due|\btotal\s+(?:now\s+)?due|\bbalance\s+due"
            r"|\bamount\s+payable|\btotal\s+payable|\bamount\s+to\s+pay|\bplease\s+pay"
            r"|\bzahlbetrag|\brechnungsbetrag|\bmontant\s+(?:dû|du|à payer|ttc)|\bnet à payer"
            r"|\btotal\s+ttc",
            4,
            False,
        ),
        (r"\b(?:amount\s+paid|payment\s+of|remittance\s+of|amount\s+charged|charged)", 3, True),
        (
            r"\b(?:invoice|grand|bill)\s+(?:total|amount)|\btotal\s+(?:amount|charges|invoice"
            r"\s+amount)|\binvoice\s+value|(?:^|\n|\s\s|\|)\s*total(?:\s*\([^)]{0,30}\))?"
            r"|\bgesamtbetrag|\bbruttobetrag|\btotal ttc",
            3,
            False,
        ),
        (
            r"\bin\s+the\s+amount\s+of|\bamounting\s+to|\btotals|\btotall?ing|\btotal\s+of"
            r"|\bamount(?:\s+invoiced|\s+billed)?|\btotal",
            2,
            False,
        ),
        (r"\b(?:for|over|über)", 1, False),
    )
)
_NOT_A_TOTAL_AFTER = re.compile(
    r"\s*(?:/|per\b|a (?:month|year)|each|off\b|savings?|discount|in savings)", re.I
)
_LABEL_AFTER = re.compile(r"[ \t]*(?:is[ \t]+)?(?:now[ \t]+)?(due|payable|paid)\b", re.I)
_INVOICE_WORD = re.compile(r"\binvoice|\bbill\b|\brechnung", re.I)
_INVOICE_NO = re.compile(
    r"\b(?:invoice|rechnung|facture|factura|fattura)\s*(?:no\.?|number|num|nr\.?|n°|#|id)?\s*[:#]?"
    r"\s*(?P<no>(?=[\w/-]{4})[A-Z]{0,6}[-/]?\d[\w/-]{1,24})",
    re.I,
)
# What introduces an invoice's due date; the date must follow at once.
_DUE_LABEL = re.compile(
    r"\b(?:due\s+(?:date|on|by)|payable\s+(?:by|on|until|before)|pay(?:ment)?\s+(?:by|before)"
    r"|remit\s+payment\s+by|payment\s+is\s+due(?:\s+on|\s+by)?|zahlbar\s+bis|fällig\s+am"
    r"|échéance)\b[\s:]*",
    re.I,
)


def _label(before: str) -> tuple[int, bool]:
    for pattern, rank, paid in _LABELS:
        if pattern.search(before):
            return rank, paid
    return -1, False


def _context_before(body: str, pos: int, width: int) -> str:
    """The text of the current sentence before `pos`, at most `width` characters."""
    window = body[max(0, pos - width) : pos]
    ends = [m.end() for m in _SENT_END.finditer(window)]
    return window[ends[-1] :] if ends else window


_INVOICE_WORDS = (
    "invoice", "bill", "statement", "receipt", "payment", "remittance", "past due", "overdue",
    "rechnung", "facture", "factura", "fattura", "amount due", "balance due", "total due",
    "amount payable",
)  # fmt: skip


def _invoices(ctx: _Ctx) -> list[Fact]:
    subject, text = ctx.subject, ctx.text
    subject_cue = bool(_INVOICE_SUBJECT.search(subject))
    if not subject_cue and not any(
        _INVOICE_BODY.search(s) for s in ctx.sentences_with(_INVOICE_WORDS)
    ):
        return []
    if _CREDIT_SUBJECT.search(subject) or _CREDIT_BODY.search(text, 0, 400):
        return []
    best: tuple[int, int, bool, _Money] | None = None  # rank, -position, paid, amount
    for in_subject, body in ((True, subject), (False, text)):
        if in_subject and not subject_cue:
            continue
        for money in _money(body, ctx.domain):
            if money.negative or money.amount <= 0:
                continue
            rank, paid = _label(_context_before(body, money.start, 60))
            if rank == 1:
                # "for"/"over" a sum counts only in a sentence about the invoice itself.
                sentence = _context_before(body, money.start, 140)
                rank = 2 if _INVOICE_WORD.search(sentence) else -1
            if in_subject and rank == -1:
                rank = 2  # "[Acme] New invoice 123 (US$1,200.00)", "April invoice: $1,200"
            if rank == -1 and (after := _LABEL_AFTER.match(body, money.end)):
                # "$1,234.50 due on March 5", "$49.00 Paid March 1, 2027"
                rank, paid = (4, False) if after.group(1).lower() != "paid" else (3, True)
            if _NOT_A_TOTAL_AFTER.match(body, money.end):
                rank = 0  # a price or a discount, not a total
            if rank < 2:
                continue
            # Within a rank the first amount of the body wins; the subject only if nothing else.
            key = (rank, -money.start if not in_subject else -len(text) - 1, paid, money)
            if best is None or key[:2] > best[:2]:
                best = key
    if best is None:
        return []
    _, _, paid, money = best
    no = ""
    m = _INVOICE_NO.search(subject) or _INVOICE_NO.search(text)
    if m and not re.fullmatch(r"20\d\d", m.group("no")):
        no = m.group("no").rstrip(".-/")
    due = None
    for m in _DUE_LABEL.finditer(text):
        found = ctx.dates(text[m.end() : m.end() + 40])
        if found and found[0].start == 0 and not found[0].relative:
            due = found[0].value
            break
    receipt = bool(_RECEIPT_SUBJECT.search(subject) or _RECEIPT_BODY.search(text))
    status = "paid" if (paid or receipt) and not _AMOUNT_DUE.search(text) else ""
    shown = f"{money.currency} {money.amount:,}"
    if status == "paid":
        detail = f"payment of {shown} received" + (f" for invoice {no}" if no else "")
    else:
        detail = (f"invoice {no} for {shown}" if no else f"invoice for {shown}") + (
            f", due {due.isoformat()}" if due else ""
        )
    return [
        ctx.fact(
            "invoice",
            amount=money.amount,
            currency=money.currency,
            due=due,
            detail=detail,
            reference=no,
            status=status,
        )
    ]


# -- renewals -------------------------------------------------------------------------------------

_RENEW_GATE = re.compile(
    r"renew|expir|cancel|\b(?:contract|agreement|term|subscription|licen[cs]e|warranty|coverage)\b",
    re.I,
)
_RENEW_CUE = re.compile(
    r"\b(?:auto-?)?renew(?:s|al|als|ed|ing)?\b|\bexpir(?:e|es|ed|ing|y|ation)\b"
    r"|\b(?:contract|agreement|subscription|licen[cs]es?|warranty|coverage|term"
    r"|(?:support|maintenance) (?:contract|agreement|plan|subscription|coverage))\b[^.;]{0,80}?"
    r"\b(?:ends?|ending|terminates?|runs? out|lapses?|comes? to an end)\b"
    r"|\bend of (?:the |your )?(?:contract|agreement|subscription|term|licen[cs]e|warranty)\b"
    r"|\bco-?terminat",
    re.I,
)
# Things that expire or renew without being a contract with the vendor, and event invitations.
_RENEW_NOT = re.compile(
    r"\b(?:password|link|session|token|offer|promotion|promo|discount|coupon|voucher|trial"
    r"|invitation|invite|code|card|registration|early[- ]bird|(?:save|reserve|claim) your seat"
    r"|passport|webinar|register"
    r"|join us|live session|summit|conference|expo|roundtable|workshop|save the date"
    r"|certification|domain name)\b",
    re.I,
)
_AUTO_RENEW = re.compile(
    r"\b(?:auto-?renew\w*|automatic(?:ally)? renew\w*|renew\w* automatically"
    r"|will be renewed automatically|evergreen)\b",
    re.I,
)
_NOTICE_DAYS = re.compile(
    r"\b(?P<n>\d{1,3})[- ]?(?:calendar |business )?days?['’]?\s+(?:(?:prior|advance|written)\s+)*"
    r"notice\b|\bnotice period of (?P<n2>\d{1,3}) days\b|\b(?:notify us|give (?:us )?notice"
    r"|written notice|cancel)\b[^.]{0,40}?\b(?:at least )?(?P<n3>\d{1,3}) days"
    r" (?:before|prior to)\b",
    re.I,
)
_NOTICE_BY = re.compile(
    r"\b(?:cancel(?:lation)?|notice(?: of non-renewal)?|opt[- ]out|notify us|terminate)\b"
    r"[^.]{0,60}?\b(?:by|before|no later than|prior to|until)\s*(?:the\s+)?$",
    re.I,
)
_NOTICE_CONTEXT = re.compile(r"renew|cancel|terminat|non-renewal|opt[- ]out", re.I)
_CONTRACT_ID = re.compile(r"\b(?:AGR|CTR|MSA|SUB|CON|CNT|LIC|SOW)-?\d{4,}\b")
_CONTRACT_NOUN = re.compile(
    r"\b((?:maintenance|support|service|software|hardware)\s+(?:contract|agreement|plan|coverage)"
    r"|subscription|licen[cs]e|warranty|coverage|contract|agreement|maintenance|support)\b",
    re.I,
)


_RENEW_WORDS = (
    "renew", "expir", "cancel", "contract", "agreement", "term", "subscription", "licen",
    "warranty", "coverage", "notice", "opt out", "opt-out", "evergreen",
)  # fmt: skip


def _renewals(ctx: _Ctx) -> list[Fact]:
    sentences = ctx.sentences_with(_RENEW_WORDS, subject=False)
    if not sentences:
        return []
    auto = any(not _negated(s, m.start()) for s in sentences for m in _AUTO_RENEW.finditer(s))
    ident = _CONTRACT_ID.search(ctx.subject) or _CONTRACT_ID.search(" ".join(sentences))
    ref = ident.group(0) if ident else ""
    renewals: dict[date, tuple[bool, str]] = {}  # due -> (from a relative date, what happens)
    notices: dict[date, Fact] = {}
    notice_days = 0
    for sentence in sentences:
        if not _RENEW_GATE.search(sentence):
            continue
        cue = _RENEW_CUE.search(sentence)
        notice = _NOTICE_DAYS.search(sentence)
        if notice and _NOTICE_CONTEXT.search(sentence) and not _negated(sentence, notice.start()):
            n = int(notice.group("n") or notice.group("n2") or notice.group("n3"))
            if 7 <= n <= 365 and not notice_days:
                notice_days = n
        if (not cue and not _NOTICE_CONTEXT.search(sentence)) or _RENEW_NOT.search(sentence):
            continue
        dates = ctx.dates(sentence)
        if not dates:
            continue
        noun_m = _CONTRACT_NOUN.search(sentence)
        noun = noun_m.group(1).lower() if noun_m else "contract"
        said = cue.group(0).lower() if cue else ""
        verb = "renews" if "renew" in said else "expires" if "expir" in said else "ends"
        near_cue = []
        for d in dates:
            if _NOTICE_BY.search(sentence, max(0, d.start - 80), d.start):
                notices[d.value] = ctx.fact(
                    "renewal",
                    due=d.value,
                    detail=f"notice to cancel due by {d.value.isoformat()}",
                    reference=ref,
                    status="notice_window",
                )
            elif cue and _RENEW_CUE.search(sentence, max(0, d.start - 120), d.end + 120):
                near_cue.append(d)
        if not near_cue or (cue and _negated(sentence, cue.start()) and "renew" in cue.group(0)):
            continue  # "we will not renew ...": bad news, not a renewal date
        # Several dates in one sentence ("from 1 March 2026 to 28 February 2027"): the last.
        last = max(near_cue, key=lambda d: d.value)
        old = renewals.get(last.value)
        if old is None or old[0]:
            renewals[last.value] = (last.relative, f"{noun} {verb}")
    # "expires in 33 days" next to "expires on 6 July 2026": the written date is the one to keep.
    if any(not rel for rel, _ in renewals.values()):
        renewals = {d: v for d, v in renewals.items() if not v[0]}
    status = "auto_renew" if auto else "expires"
    facts = []
    for due, (_, what) in sorted(renewals.items()):
        if auto:
            what = what.rsplit(" ", 1)[0] + " auto-renews"
        facts.append(
            ctx.fact(
                "renewal", due=due, detail=f"{what} {due.isoformat()}", reference=ref, status=status
            )
        )
    # "90 days' notice" is a deadline only next to a renewal date, or an auto-renew clause (the
    # buyer then knows a window exists); elsewhere it is a clause like any other.
    if notice_days and not notices and (renewals or auto):
        first = min(renewals) if renewals else None
        deadline = first - timedelta(days=notice_days) if first else None
        detail = f"{notice_days} days' notice to cancel" + (
            f": by {deadline.isoformat()}" if deadline else ""
        )
        notices[deadline or date.min] = ctx.fact(
            "renewal", due=deadline, detail=detail, reference=ref, status="notice_window"
        )
    return facts + list(notices.values())


# -- bad news -------------------------------------------------------------------------------------

# Objects after which "terminate" is technical, not news.
_TECHNICAL = (
    r"(?:the |an? |your |our |all |any |idle |inactive )?(?:ssl|tls|https?|connections?|sessions?"
    r"|process(?:es)?|threads?|instances?|vms?|servers?|jobs?|tunnels?|requests?|calls?"
    r"|employees?|users?|pods?|containers?)\b"
)
_NOT_WORD = r"(?!not\b|never\b)"
_BAD_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(p, re.I))
    for kind, p in (
        (
            "termination",
            r"\b(?:notice of (?:termination|non-renewal)|termination notice|notice to terminate)\b"
            r"|\bwe(?:'re| are| will| have| must| shall| hereby| intend to| are going to)?"
            rf"(?:\s+{_NOT_WORD}\w+){{0,3}}\s+terminat(?:e|ing)\s+(?!{_TECHNICAL})"
            r"|\b(?:has|have) decided to terminate\s+(?!" + _TECHNICAL + r")"
            r"|\bwe(?:'re| are| will| have decided to| must)?\s+end(?:ing)?\s+(?:your|our|the|this)"
            r"\s+(?:contract|agreement|subscription|services?|relationship|partnership|account)\b"
            r"|\b(?:your|the|this|our) (?:contract|agreement|subscription|services?|account"
            r"|partnership|licen[cs]e)\b[^.]{0,40}?\b(?:will be|is being|has been|shall be)"
            r" terminated\b"
            r"|\bwe (?:will not|won't|do not intend to|have decided not to|shall not) renew"
            r" (?:your|the|our|this)\b",
        ),
        (
            "discontinued",
            r"\b(?:discontinu(?:e|es|ed|ing|ation)|sunset(?:ting)?|retir(?:e|es|ing|ement)"
            r"|phas(?:e|ing) out|wind(?:ing)? down|shut(?:ting)? down|withdraw(?:al|ing)? of)\b"
            r"(?!\s+(?:items?|models?|stock|inventory|colou?rs?|photos?|sale)\b)"
            r"|\b(?:will|shall) no longer (?:be offered|offer|be sold|sell|be available)\b",
        ),
        (
            "end_of_life",
            r"\bend[- ]of[- ](?:life|support|sale|service|availability)\b"
            r"(?![- ]?(?:cycle|care|planning|equipment|assets?|devices?|hardware|laptops?|it\b"
            r"|electronics|disposal|recycling|management|technology|gear))"
            r"|(?-i:\bEOL\b|\bEoL\b)"
            r"|\b(?:will|shall) no longer (?:support|be supported|provide|maintain|be maintained"
            r"|receive (?:security )?updates)\b"
            r"|\b(?:will|to) (?:stop|cease) (?:supporting|selling|offering|providing)\b"
            r"|\b(?:we|we're|we are|[A-Z]\w+ is|[A-Z]\w+ will be) (?:ending|will end|end)"
            r" (?:support|sales?|availability) (?:for|of)\b"
            r"|\blast (?:order|ship|support) date\b",
        ),
        (
            "price_increase",
            r"\b(?:price|pricing|rate|fee)s?\s+(?:increase|rise|hike|uplift|adjustment)s?\b"
            r"|\b(?:prices|rates|fees|pricing|list prices)\s+(?:will|are going to|are set to"
            r"|shall)\s+(?:\w+\s+)?(?:increase|rise|go up)\b"
            r"|\b(?:prices|rates|fees|pricing)\s+(?:are|is)\s+(?:going|set to go)\s+up\b"
            r"|\b(?:increas\w*|rais\w*|adjust\w*|uplift\w*)\s+(?:\w+\s+)?(?:prices|pricing|rates"
            r"|fees|list prices)\b"
            r"|\b\d{1,2}(?:[.,]\d)?\s?% (?:price |pricing |rate )?(?:increase|uplift|rise)\b"
            r"|\buplift of \d{1,2}(?:[.,]\d)?\s?%",
        ),
    )
)
# "discontinue"/"retire"/"sunset" are news only with the vendor as the actor, as the noun of a
# notice ("Important: discontinuation of X") or in the passive ("X will be discontinued").
_DISCONTINUE_FORM = re.compile(
    r"(?:(?i:\bwe\b|\bwe're\b)|\b[A-Z][\w&.-]*(?:\s+[A-Z][\w&.-]*)*\s+(?:is|will|has|have|are))"
    r"[^.]{0,40}$"
    r"|(?i:\b(?:notice|notification|announcement|announcing|important|effective)\b)[^.]{0,30}$"
    r"|^\W*$|\b(?:will be|is being|are being|to be|has been|have been|being)\s+$",
)
# Marketing and research talk about price increases and end of support as topics.
_MARKETING = re.compile(
    r"\b(?:webinar|register|join us|our guide|e-?book|white ?paper|checklist|case study"
    r"|read more|blog|learn how|learn more|download|podcast|without drama|how to|book a demo"
    r"|demo|are your|are you ready|get ready|survey|report|study|analysts?|research|trends?"
    r"|outlook|benchmark|expect|predict\w*|tips|playbook|what it means|means for you)\b",
    re.I,
)
# A price increase is news when it is the sender's own, or addressed to the buyer.
_PRICE_OWNED = re.compile(
    r"\b(?:we|we're|we've|our|us|your|you|effective|starting|as of|beginning|renewal|notice"
    r"|contract(?:ed)?|subscription|plan|account)\b",
    re.I,
)
_SOFTER = re.compile(r"\b(?:decrease|reduc\w*|lower\w*|cut\w*|sav\w*)\b", re.I)
_PERCENT = re.compile(r"(\d{1,2}(?:[.,]\d{1,2})?)\s?%")
_EFFECTIVE = re.compile(
    r"\b(?:effective|from|starting|as of|beginning|on|after|taking effect(?: on)?|ends? on"
    r"|ending|until|through)\s*$",
    re.I,
)
# A sentence of the notice that says when something ends, whatever else it says.
_ENDS = re.compile(
    r"\b(?:ends?|ending|will end|effective|terminates?|discontinued|no longer \w+(?: \w+)?"
    r" after|until|increase \w+ effective|taking effect(?: on)?)\s+(?:on\s+|as of\s+)?$",
    re.I,
)
_OBJECT = re.compile(
    r"(?:terminate|discontinue|retire|retiring|sunset|sunsetting|discontinuation of"
    r"|retirement of|end of life of|end[- ]of[- ]life announcement:|EOS notice for|notice:"
    r"|termination -|end of (?:life|support|sale) (?:for|of))\s+(?P<obj>[^.,;:()\n]{3,70}?)"
    r"(?=\s*(?:[.,;:()\n]|\beffective\b|\bon\s|\bafter\b|\bas of\b|\bfrom\b|\bwill\b|$))",
    re.I,
)
_BAD_LABEL = {
    "termination": "termination",
    "discontinued": "discontinuation",
    "end_of_life": "end of life",
    "price_increase": "price increase",
}
_BAD_DATE_LABEL = {
    "end_of_life": r"end[- ]of[- ](?:support|life|service)(?: date)?",
    "termination": r"(?:termination|end|service end|effective) date",
    "discontinued": r"(?:end|effective|discontinuation) date",
    "price_increase": r"effective(?: date)?",
}


_DISCONTINUE_VERBS = ("discontinu", "sunset", "retir", "phas", "wind", "shut", "withdraw")
# "... the 3% uplift you asked about will not apply": negated after the cue.
_NEGATED_AFTER = re.compile(
    r"[^.;!?]{0,40}?\b(?:will not|won't|does not|doesn't|is not|isn't|not be|not apply|waived"
    r"|cancell?ed|withdrawn|postponed indefinitely)\b",
    re.I,
)


def _bad_hit(kind: str, pattern: re.Pattern[str], sentence: str) -> str:
    """ "hit", "marketing" (the news as a marketing or research topic) or ""."""
    result = ""
    for m in pattern.finditer(sentence):
        if _negated(sentence, m.start()) or _NEGATED_AFTER.match(sentence, m.end()):
            continue
        if (
            kind == "discontinued"
            and m.group(0).lower().startswith(_DISCONTINUE_VERBS)
            and not _DISCONTINUE_FORM.search(sentence[: m.start()])
        ):
            continue
        if _MARKETING.search(sentence):
            result = "marketing"
            continue
        if kind == "price_increase" and (
            _SOFTER.search(m.group(0)) or not _PRICE_OWNED.search(sentence)
        ):
            continue
        return "hit"
    return result


# The words each kind of bad news needs, so that its regex runs only where they are.
_BAD_WORDS = {
    "termination": (
        "terminat", "renew", "end your", "end our", "end the", "end this", "ending your",
        "ending our", "ending the", "ending this",
    ),
    "discontinued": (
        "discontinu", "sunset", "retir", "phase out", "phasing out", "wind down", "winding down",
        "shut down", "shutting down", "withdraw", "no longer",
    ),
    "end_of_life": (
        "end of", "end-of", "eol", "no longer", "stop supporting", "cease supporting",
        "stop selling", "cease selling", "stop offering", "cease offering", "stop providing",
        "cease providing", "last order", "last ship", "last support", "ending support",
        "end support", "ending sale", "end sale", "ending availability",
    ),
    "price_increase": ("price", "pricing", "rate", "fee", "uplift"),
}  # fmt: skip
# A price sentence is read only if it also has one of these.
_PRICE_VERBS = ("increase", "rise", "hike", "uplift", "adjust", "rais", "go up", "going up")
_END_WORDS = ("end", "effective", "terminat", "discontinu", "no longer", "until", "taking effect")


def _bad_news(ctx: _Ctx) -> list[Fact]:
    hits: dict[str, list[str]] = {}
    for kind, pattern in _BAD_PATTERNS:
        marketing = False
        for sentence in ctx.sentences_with(_BAD_WORDS[kind], subject=False):
            if kind == "price_increase":
                low = sentence.lower()
                if not any(v in low for v in _PRICE_VERBS):
                    continue
            found = _bad_hit(kind, pattern, sentence)
            if found == "hit":
                hits.setdefault(kind, []).append(sentence)
            marketing = marketing or found == "marketing"
        if marketing and hits.get(kind) == [_WS.sub(" ", ctx.own_subject).strip()]:
            # "Windows 10 end of support" over a body that sells around it: a topic, not news.
            del hits[kind]
    # One piece of news per message (plus a price increase): a termination notice also says the
    # service is discontinued and when support ends.
    ends: tuple[str, ...] = ("termination", "discontinued", "end_of_life")
    kinds = [k for k in ends if k in hits][:1]
    if "price_increase" in hits:
        kinds.append("price_increase")
    facts = []
    for kind in kinds:
        sentence = hits[kind][0]
        detail = _BAD_LABEL[kind]
        if kind == "price_increase":
            pct = _PERCENT.search(sentence)
            if pct:
                detail += f" of {pct.group(1)}%"
        else:
            obj = _OBJECT.search(sentence) or _OBJECT.search(ctx.subject)
            if obj:
                detail += f" of {obj.group('obj').strip()}"
        # The date may be in another sentence of the notice than the one that named the news.
        others = [s for k, ss in hits.items() if k != "price_increase" or k == kind for s in ss]
        due = _bad_news_date(ctx, kind, [*hits[kind], *others])
        if due:
            detail += f" from {due.isoformat()}" if kind == "price_increase" else f", {due}"
        facts.append(ctx.fact("bad_news", due=due, detail=detail[:160], status=kind))
    return facts


def _bad_news_date(ctx: _Ctx, kind: str, sentences: list[str]) -> date | None:
    """When a piece of bad news takes effect: a labelled line ("End of support: ..."), else a
    date introduced by "effective"/"from"/"ends on" in the sentences that gave the news, else
    one introduced by "ends on"/"effective" anywhere in the message.
    """
    for m in re.finditer(_BAD_DATE_LABEL[kind] + r"\s*:?\s*", ctx.text, re.I):
        found = ctx.dates(ctx.text[m.end() : m.end() + 40])
        if found and found[0].start == 0:
            return found[0].value
    for pattern, pool in ((_EFFECTIVE, sentences), (_ENDS, ctx.sentences_with(_END_WORDS))):
        for sentence in pool:
            for d in ctx.dates(sentence):
                if not d.relative and pattern.search(sentence, max(0, d.start - 30), d.start):
                    return d.value
    return None


# -- shipments ------------------------------------------------------------------------------------

_ORDERED = re.compile(
    r"\border confirmation\b|\bconfirm(?:s|ed|ing)? (?:your |the )?(?:purchase )?order\b"
    r"|\border\b[^.\n]{0,30}\b(?:is |has been |was )?(?:confirmed|received|being processed)\b"
    r"|\bthank you for your (?:purchase )?order\b|\bwe(?:'ve| have) (?:got|received) your"
    r" (?:purchase )?order\b|\bauftragsbestätigung\b",
    re.I,
)
_DELAYED = re.compile(
    r"\b(?:(?:is|are|has been|have been|was|were|been|will be)\s+delayed|delivery delay"
    r"|shipping delay|back-?order(?:ed)?|delivery exception|could not be delivered"
    r"|delivery attempt (?:failed|was unsuccessful)|held (?:at|in) customs|running late"
    r"|new (?:ship|delivery|estimated delivery) date|rescheduled)\b",
    re.I,
)
_DELIVERED = re.compile(
    r"\b(?:(?:was|were|has been|have been|got|is|been)\s+(?:successfully\s+)?delivered"
    r"|delivered(?::| to your| at| on| today| yesterday)|proof of delivery|delivery confirmation"
    r"|signed for by|zugestellt|livré)",
    re.I,
)
_SHIPPED = re.compile(
    r"\b(?:(?:has|have|was|were|is|are|been)\s+(?:been\s+)?(?:shipped|dispatched)|shipped:"
    r"|shipment notification|on (?:its|their|the) way|in transit|out for delivery"
    r"|left our (?:warehouse|facility)|handed (?:\w+\s+){0,3}to\b|package\(?s?\)? shipped"
    r"|items? (?:have |has )?shipped|tracking (?:number|information|details|no\.?|#))",
    re.I,
)
_NOT_DELIVERED_YET = re.compile(
    r"\b(?:not|estimated|expected|scheduled|will be|to be)\b[^.\n]{0,12}$", re.I
)
_SHIP_FUTURE = re.compile(
    r"\b(?:will ship|expect to ship|ship date|ships? (?:in|within|by)|free shipping|we ship"
    r"|ship anywhere|shipping on orders)\b",
    re.I,
)
_ORDER_NO = re.compile(
    r"\b(?P<po>(?:PO|SO|ORD)-?\d{5,})\b"
    r"|\b(?:proof of delivery|delivery confirmation|delivered):?\s+(?:for\s+)?#?"
    r"(?P<pod>(?=[A-Z0-9-]*\d{4})[A-Z0-9][A-Z0-9-]{3,24})\b"
    r"|\b(?:order|PO|purchase order|sales order|bestellung|auftrag|commande)\s*(?:no\.?|number"
    r"|num|nr\.?|#|id)?\s*[:#]?\s*(?P<no>(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{3,24})\b",
    re.I,
)
_TRACKING = re.compile(
    r"\b(?P<ups>1Z[0-9A-Z]{16})\b"
    r"|\b(?i:tracking|track(?:ing)? (?:no|number|#|id)|waybill|AWB|consignment)\s*"
    r"(?i:number|no\.?|#|id|code)?\s*[:#]?\s*(?P<tn>(?=[A-Z0-9-]*\d{4})[A-Z0-9][A-Z0-9-]{7,34})\b"
    # "Your shipment (NorthStar Express NSX-51477816) was delivered": the carrier's name first.
    r"|\b(?i:shipment|parcel|package|consignment)\s*\(?(?:[A-Z][A-Za-z]+\s+){0,3}"
    r"(?P<tn2>(?=[A-Z0-9-]*\d{6})[A-Z0-9][A-Z0-9-]{7,34})\b"
    r"|\b(?P<digits>\d{10}|\d{12}|\d{15}|\d{20,22})\b"
)
_TRACK_CUE = re.compile(r"track|waybill|AWB", re.I)


_SHIP_WORDS = (
    "ship", "deliver", "track", "dispatch", "transit", "backorder", "back-order", "on its way",
    "on their way", "on the way", "left our", "handed", "signed for", "delay", "reschedul",
    "customs", "running late", "zugestellt", "livré",
)  # fmt: skip


def _ship_status(sentences: list[str]) -> str:
    """The most telling status the sentences give: delayed, then delivered, then shipped."""
    for pattern, name in ((_DELAYED, "delayed"), (_DELIVERED, "delivered"), (_SHIPPED, "shipped")):
        for sentence in sentences:
            for m in pattern.finditer(sentence):
                if name != "delayed" and _negated(sentence, m.start()):
                    continue
                if name == "delivered" and _NOT_DELIVERED_YET.search(
                    sentence, max(0, m.start() - 20), m.start()
                ):
                    continue
                return name
    return ""


def _shipments(ctx: _Ctx) -> list[Fact]:
    text = ctx.all_text
    status = _ship_status(ctx.sentences_with(_SHIP_WORDS))
    if not status and not any(_ORDERED.search(s) for s in ctx.sentences_with(("order", "auftrag"))):
        return []
    orders: list[str] = []
    for m in _ORDER_NO.finditer(text):
        no = (m.group("po") or m.group("pod") or m.group("no")).upper()
        if no not in orders and not re.fullmatch(r"20\d\d", no) and len(orders) < 3:
            orders.append(no)
    tracking = ""
    for m in _TRACKING.finditer(text):
        if m.group("ups") or m.group("tn") or m.group("tn2"):
            tracking = (m.group("ups") or m.group("tn") or m.group("tn2")).upper()
        elif _TRACK_CUE.search(text, max(0, m.start() - 60), m.start()):
            tracking = m.group("digits")
        if tracking:
            break
    if status == "shipped" and not tracking and _SHIP_FUTURE.search(text):
        status = ""  # an order confirmation saying when it will ship
    if not status and orders:
        # Not news in itself, but it ties the order number to the PO number, which the
        # shipment and delivery notices may each use alone (see unanswered).
        status = "ordered"
    if not status or not (orders or tracking):
        return []  # nothing to follow up on: a shipment without an order or tracking number
    shown = "confirmed" if status == "ordered" else status
    detail = f"order {orders[0]} {shown}" if orders else f"shipment {shown}"
    if tracking:
        detail += f", tracking {tracking}"
    reference = " ".join(dict.fromkeys([*orders, tracking] if tracking else orders))
    return [ctx.fact("shipment", detail=detail, reference=reference, status=status)]


# -- tickets --------------------------------------------------------------------------------------

# "ticket #12345", "case 00123456", "request (SR-123)": matched where the keyword is.
_TICKET_KEYWORDS = ("ticket", "case", "incident", "request", "issue")
_TICKET_AFTER_WORD = re.compile(
    r"(?i:ticket|case|incident|request|issue)s?\b\s*(?i:no\.?|number|nr\.?|id|#)?\s*[:#]?\s*\(?#?"
    r"(?P<a>(?=[A-Z0-9-]*\d{3})[A-Z]{0,6}-?\d[\d-]*)\b"
)
# Prefixed ids ("INC0012345", "CS-57979") and bracketed keys ("[ABC-123]") anywhere in the head.
_TICKET_ID = re.compile(
    r"\b(?P<b>(?:INC|RITM|CS|CASE|SR|TKT|REQ|CHG|PRB|SD|HD)-?\d{4,})\b|\[(?P<c>[A-Z]{2,8}-\d{3,})\]"
)
_TICKET_CUE = re.compile(
    r"\b(?:support|ticket|case|incident|service desk|help ?desk|request|issue|outage|disruption"
    r"|problem|engineer)\b",
    re.I,
)
# Identifiers of other things: orders, invoices, quotes, contracts.
_TICKET_NOT = re.compile(r"\b(?:PO|INV|SO|ORD|AGR|CTR|MSA|SUB|Q|QT|QUOTE|REF)-?\d", re.I)
# Tickets to events and travel are not support tickets.
_EVENT_TICKET = re.compile(
    r"\btickets? (?:for|to)\b|\b(?:admission|boarding|concert|raffle|e-ticket|seat|row)\b", re.I
)
_RESOLVED = re.compile(
    r"\b(?:(?:is|has been|have been|was|been|now|as)\s+(?:now\s+)?(?:resolved|closed|fixed"
    r"|solved|restored)|resolved:|\[resolved\]|status:\s*(?:resolved|closed)|closing\b[^.]{0,30}"
    r"(?:resolved|case|ticket)|fully restored|operating normally|post-incident report"
    r"|marked as (?:resolved|solved|closed)|(?:ticket|case|request) closed"
    # Satisfaction surveys come once a case is closed.
    r"|satisfaction survey|rate your (?:support )?experience|how did we do|how would you rate)",
    re.I,
)
_OPENED = re.compile(
    r"\b(?:opened|created|logged|raised|submitted|has been received|new (?:case|ticket|incident)"
    r"|we (?:have )?received your (?:request|report|e-?mail|ticket|case)|looking into your"
    r"|status:\s*(?:investigating|identified|new|open)|we are investigating|acknowledged)\b",
    re.I,
)


# ServiceNow's record prefixes mean an incident, request item, change or problem by themselves.
_SELF_EVIDENT = ("INC", "RITM", "CHG", "PRB")
# Support mail names its case at the top: only the subject and the start of the body are read.
_TICKET_HEAD = 2500


def _tickets(ctx: _Ctx) -> list[Fact]:
    text = ctx.all_text[:_TICKET_HEAD]
    low = ctx.low[:_TICKET_HEAD]
    found: list[tuple[int, str, bool]] = []  # position, id, named by a keyword
    for pos in _find(low, _TICKET_KEYWORDS):
        m = _TICKET_AFTER_WORD.match(text, pos)
        if m:
            ident = m.group("a")
            if re.search(r"\d{4}|[A-Z]-?\d{3}", ident):  # not "case 3", "issue 12"
                found.append((pos, ident, True))
    for m in _TICKET_ID.finditer(text):
        found.append((m.start(), m.group("b") or m.group("c"), False))
    ref = ""
    for pos, ident, by_word in sorted(found):
        if _TICKET_NOT.match(ident) or re.fullmatch(r"20\d\d", ident):
            continue
        if not by_word and not ident.startswith(_SELF_EVIDENT) and not _TICKET_CUE.search(text):
            continue  # a bare "REQ-1234" in mail that is not about support
        if by_word and _EVENT_TICKET.search(text, max(0, pos - 60), pos + 80):
            continue
        ref = ident.upper()
        break
    if not ref:
        return []
    # A reply's subject ("Re: Case 123 opened") repeats the first message: the status is in the
    # new text.
    own = ctx.own_subject + "\n\n" + ctx.text[:_TICKET_HEAD]
    resolved = _RESOLVED.search(own)
    if resolved and not _negated(own, resolved.start()):
        status = "resolved"
    elif _OPENED.search(own, 0, 700):
        status = "opened"
    else:
        status = "updated"
    word = "incident" if ref.startswith("INC") or "incident" in text.lower() else "ticket"
    return [ctx.fact("ticket", detail=f"{word} {ref} {status}", reference=ref, status=status)]


# -- greetings and merge fields -------------------------------------------------------------------

_GREETING = re.compile(
    r"(?:^|(?<=[\s>]))(?P<g>Hi|Hello|Hey|Dear|Good (?:morning|afternoon|evening|day)|Greetings"
    r"|Hiya|Howdy|Morning|Hallo|Bonjour)\b[ \t]*,?[ \t]+"
    r"(?P<title>(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Herr|Frau|Mme)\.?[ \t]+)?"
    r"(?P<name>[^\W\d_][\w'’-]*(?:[ \t]+[^\W\d_][\w'’-]*){0,2}?)"
    r"[ \t]*(?:[,!:;—–]|-(?=\s|$)|\n|$)",
    re.M,
)
_BARE_GREETING = re.compile(r"(?P<name>[A-Z][a-z'’-]{1,20})[ \t]*[,!][ \t]*$")
_NOT_NAMES = frozenset(
(
    "team", "all", "there", "everyone", "everybody", "folks", "guys", "friend", "friends",
    "colleague", "colleagues", "customer", "customers", "valued", "sir", "madam", "sirs",
    "partner", "partners", "client", "clients", "member", "members", "user", "users", "subscriber",
    "subscribers", "reader", "readers", "supplier", "suppliers", "vendor", "vendors",
    "procurement", "purchasing", "it", "finance", "accounts", "admin", "administrator", "manager",
    "managers", "buyer", "buyers", "hiring", "again", "back", "and", "world", "you", "ladies",
    "gentlemen", "people", "both", "neighbor", "neighbour", "account", "owner", "contact",
    "recipient", "support", "billing", "sales", "leader", "leaders", "future", "mate", "mates",
    "yall", "ya", "gang", "crew", "squad", "ops", "operations", "legal", "security", "board",
    "committee", "staff", "student", "students", "sender", "here", "from", "to", "welcome", "this",
    "my", "our", "i", "i'm", "im", "we", "just", "quick", "morning", "afternoon", "evening", "day",
    "lovely", "dear", "hi", "hello", "hey", "hiya", "greetings", "thanks", "thank", "cheers",
    "regards", "best", "sorry", "congrats", "congratulations",
))  # fmt: skip


def _names(
    ctx: _Ctx, message: Message, buyer_names: Sequence[str], buyer_addresses: Sequence[str]
) -> list[Fact]:
    if not buyer_names:
        return []
    if buyer_addresses and not {a.lower() for a in buyer_addresses} & set(message.to):
        return []  # Cc'd or on a list: the greeting is for someone else
    if len(message.to) > 1:
        return []  # several people in To: the greeting may be for any of them
    head = ctx.text.lstrip()[:400]
    m = _GREETING.search(head)
    title = ""
    if m and m.start() < 200:
        name, title = m.group("name"), (m.group("title") or "").strip()
    else:
        bare = _BARE_GREETING.fullmatch(head.split("\n", 1)[0]) if "\n" in head else None
        if not bare:
            return []
        name = bare.group("name")
    words = name.split()
    folded = [_fold(w).strip("'’-") for w in words]
    # A lower-case word is not a name ("Hello from Acme"); nor are "team", "all", "there"...
    if not words[0][:1].isupper() or any(w in _NOT_NAMES for w in folded):
        return []
    known: set[str] = set()
    for n in buyer_names:
        known.update(_fold(p) for p in re.split(r"[\s.]+", n) if p)
    # "Dear Mr. Smith" is about the surname, "Hi Jenny" about the first name. A prefix of a
    # configured name ("Dan" for "Daniel") is the buyer too: flagging it would be noise.
    word = folded[-1] if title else folded[0]
    if word in known or any(len(word) >= 3 and k.startswith(word) for k in known):
        return []
    # The buyer's company ("Hi Brookfield team") and other recipients are in the addresses.
    addresses = _fold(" ".join((*buyer_addresses, *message.to, *message.cc)))
    if len(word) >= 3 and word in addresses:
        return []
    shown = f"{title} {name}" if title else name
    return [ctx.fact("wrong_name", detail=f"greeted as '{shown}'")]


_MERGE_VOCAB = (
    r"first[ _.-]?name|last[ _.-]?name|full[ _.-]?name|fname|lname|given[ _.-]?name|surname"
    r"|name|first|company(?:[ _.-]?name)?|organi[sz]ation(?:[ _.-]?name)?|org[ _.-]?name"
    r"|account[ _.-]?name|job[ _.-]?title|title|city|industry|recipient(?:[ _.-]?name)?"
    r"|contact[ _.-]?name|prospect[ _.-]?name|salutation|website|domain"
)
_MERGE = re.compile(
    r"\{\{\s*[A-Za-z_][\w .|:-]{0,40}?\s*\}\}"  # {{first_name}}, {{ contact.firstname }}
    r"|\{!\s*\w+(?:\.\w+)?\s*\}"  # {!Contact.FirstName} (Salesforce)
    r"|\*\|[A-Z][A-Z0-9_]{1,30}\|\*"  # *|FNAME|* (Mailchimp)
    r"|%%?[A-Za-z][A-Za-z_]{2,30}%%?(?![\w%])"  # %FIRSTNAME%, %%FirstName%%
    r"|<<\s*[A-Za-z][\w ]{1,30}\s*>>"  # <<First Name>>
    r"|\$\{\s*[A-Za-z_]\w{1,30}\s*\}"  # ${first_name}
    r"|\[\[\s*[A-Za-z_][\w ]{1,30}\s*\]\]"  # [[FirstName]]
    rf"|\{{\s*(?i:{_MERGE_VOCAB})\s*\}}"  # {FirstName}
    rf"|\[\s*(?i:{_MERGE_VOCAB})\s*\]"  # [Company], [First Name]
    rf"|#(?i:{_MERGE_VOCAB})#"
)
_MERGE_GATE = re.compile(r"[{\[%*<#$]")
_PERCENT_FIELD = re.compile(r"%%?[A-Z][A-Z_]{2,30}%%?|%%[A-Za-z_]+%%")


def _merge_fields(ctx: _Ctx) -> list[Fact]:
    text = ctx.subject + "\n" + ctx.text
    if not _MERGE_GATE.search(text):
        return []
    for m in _MERGE.finditer(text):
        token = m.group(0)
        if token.startswith("%") and not _PERCENT_FIELD.fullmatch(token):
            continue  # "%done%" is prose; template variables are upper case or doubled
        if token[0] == "[" and token[1] != "[" and not token.strip("[] ")[:1].isupper():
            continue  # "[Company]" is a placeholder, "[company]" a note
        return [ctx.fact("merge_field", detail=f"leftover merge field {token}")]
    return []


# -- extract --------------------------------------------------------------------------------------


def extract(
    message: Message,
    *,
    buyer_names: Sequence[str] = (),
    now: datetime | None = None,
    buyer_addresses: Sequence[str] = (),
) -> list[Fact]:
    """The facts one message states, in the order of KINDS.

    `buyer_names` are the names the buyer goes by ("Ravi Alvarez", "Rav"); without them no
    wrong-name fact is made. `buyer_addresses`, when given, make a greeting count only when the
    buyer is in To, and mark mail from the buyer's own domains as internal (module notes).
    `now` stands in for the message's date when it has none (relative dates need one).
    """
    when = message.date or now
    sender, subject = message.sender, message.subject
    text = _new_text(message.text, message.html_only)
    own = {vendor_key(a) for a in buyer_addresses if "@" in a}
    vendor = vendor_of(message)
    internal = bool(sender) and vendor_key(sender) in own
    if internal:
        # A colleague's mail is about a vendor only when it forwards the vendor's mail.
        sender, subject, text = _forwarded(message.text)
        vendor = vendor_key(sender)
        if not sender or vendor in own:
            return []
        text = _new_text(text, message.html_only)
    ctx = _Ctx(subject, text, vendor, when, sender.rpartition("@")[2])
    facts = [*_invoices(ctx), *_renewals(ctx), *_bad_news(ctx), *_shipments(ctx), *_tickets(ctx)]
    if not internal:
        facts += _names(ctx, message, buyer_names, buyer_addresses)
    facts += _merge_fields(ctx)
    return facts


# -- flags ----------------------------------------------------------------------------------------


def _month_index(d: datetime) -> int:
    return d.year * 12 + d.month - 1


def invoice_anomalies(
    history: Sequence[Fact], *, threshold: float = 0.5, months: int = 3
) -> list[Anomaly]:
    """Invoices more than `threshold` above or below their vendor's recent average.

    Per vendor and currency, each invoice is compared with the mean of that vendor's invoices
    dated in the `months` calendar months before its own month (the month itself is left out,
    so a vendor billing twice in a month is not compared with itself). An invoice with no such
    history is never flagged. Ignored: facts other than invoices, invoices without an amount or a
    date, a repeat of an invoice number, and the same amount again within ten days (a reminder).
    Payment receipts (status "paid") are neither compared nor counted: a payment repeats a bill
    already counted, and one-off card purchases vary by nature. Sorted by date.
    """
    groups: dict[tuple[str, str], list[tuple[datetime, Decimal, Fact]]] = defaultdict(list)
    for f in history:
        if (
            f.kind == "invoice"
            and f.status != "paid"
            and f.amount is not None
            and f.amount > 0
            and f.date is not None
        ):
            groups[(f.vendor, f.currency)].append((f.date, f.amount, f))
    out: list[Anomaly] = []
    for bills in groups.values():
        bills.sort(key=lambda i: i[0])
        kept: list[tuple[datetime, Decimal, Fact]] = []
        refs: set[str] = set()
        for when, amount, f in bills:
            if f.reference and f.reference in refs:
                continue
            if any(a == amount and when - w <= timedelta(days=10) for w, a, _ in kept[-3:]):
                continue
            refs.add(f.reference)
            kept.append((when, amount, f))
        for when, amount, f in kept:
            month = _month_index(when)
            prev = [a for w, a, _ in kept if month - months <= _month_index(w) < month]
            if not prev:
                continue
            average = sum(prev, Decimal(0)) / len(prev)
            change = float((amount - average) / average)
            if abs(change) > threshold:
                out.append(Anomaly(f, average.quantize(Decimal("0.01")), change, len(prev)))
    out.sort(key=lambda a: a.fact.date or datetime.min)
    return out


def upcoming_renewals(facts: Sequence[Fact], *, today: date, within_days: int = 60) -> list[Fact]:
    """Renewal facts (renewals, expiries, notice deadlines) due from today to today+within_days.

    One fact per vendor, due date and status: the newest message's, since a later notice
    restates or corrects an earlier one. Sorted by due date.
    """
    last = today + timedelta(days=within_days)
    best: dict[tuple[str, date, str], Fact] = {}
    for f in facts:
        if f.kind != "renewal" or f.due is None or not today <= f.due <= last:
            continue
        key = (f.vendor, f.due, f.status)
        old = best.get(key)
        if old is None or (f.date is not None and (old.date is None or f.date > old.date)):
            best[key] = f
    return sorted(best.values(), key=lambda f: (f.due or today, f.vendor))


_OPEN = {"shipment": ("shipped", "delayed"), "ticket": ("opened", "updated")}
_CLOSED = {"shipment": "delivered", "ticket": "resolved"}


def unanswered(
    facts: Sequence[Fact],
    later_messages: Mapping[str, Sequence[datetime]],
    *,
    today: datetime,
    days: int,
) -> list[Fact]:
    """Open shipments and tickets nobody has followed up on.

    A shipment (shipped or delayed) or ticket (opened or updated) is flagged when at least `days`
    days have passed since its message and none of these came after it:

    - a message from the same vendor: a date in `later_messages[vendor]` (the caller chooses what
      counts, e.g. every message from that vendor, or only its non-bulk mail);
    - a fact from the same vendor sharing one of its reference ids, whatever its status (the
      vendor wrote about it; if that follow-up is still open it is judged in turn);
    - a delivered or resolved fact sharing one of its reference ids, from any vendor key (a
      carrier or a helpdesk platform may send it).

    Facts without a date are never flagged. One fact per vendor and reference, the newest.
    Sorted by date.
    """
    latest: dict[str, datetime] = {v: max(ds) for v, ds in later_messages.items() if ds}
    # Ids named together in one fact (an order, its PO and tracking numbers) are one thing.
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def root(x: tuple[str, str]) -> tuple[str, str]:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    relevant = [f for f in facts if f.kind in _OPEN and f.date is not None]
    for f in relevant:
        ids = [(f.vendor, i) for i in reference_ids(f)]
        for a, b in pairwise(ids):
            parent[root(a)] = root(b)
    mentioned: dict[tuple[str, str], datetime] = {}  # group -> last fact from its vendor
    closed: dict[str, datetime] = {}  # id -> last delivered/resolved fact, any vendor
    for f in relevant:
        assert f.date is not None
        for ident in reference_ids(f):
            group = root((f.vendor, ident))
            mentioned[group] = max(mentioned.get(group, f.date), f.date)
            if f.status == _CLOSED[f.kind]:
                closed[ident] = max(closed.get(ident, f.date), f.date)
    members: dict[tuple[str, str], list[str]] = defaultdict(list)
    for node in list(parent):
        members[root(node)].append(node[1])
    cutoff = today - timedelta(days=days)
    flagged: dict[tuple[str, str, str], Fact] = {}
    for f in relevant:
        when = f.date
        assert when is not None
        if f.status not in _OPEN[f.kind] or when > cutoff or latest.get(f.vendor, when) > when:
            continue
        groups = {root((f.vendor, i)) for i in reference_ids(f)}
        if any(mentioned[g] > when for g in groups) or any(
            closed.get(i, when) > when for g in groups for i in members[g]
        ):
            continue
        key = (f.kind, f.vendor, f.reference or f.detail)
        old = flagged.get(key)
        if old is None or (old.date is not None and when > old.date):
            flagged[key] = f
    return sorted(flagged.values(), key=lambda f: f.date or today)

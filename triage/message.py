"""A parsed email: `parse(bytes) -> Message`.

Pure and total: `parse` never raises on bad mail. Whatever it could not read (an unknown or wrong
charset, a broken MIME structure, damaged base64, a truncated message) is recorded as a
human-readable string in `Message.defects`, and the rest of the message is still used. Its
time is bounded too: every size that costs time (the message, a header line, the header lines,
the recipients, the parts, the nesting, the HTML handed to lxml) is capped before the work
that costs, and a cap that cut something is a defect (tests/hostile.py makes the mail to try).

The parser is our own rather than the stdlib `email` package because parsing is the bottleneck of
a run (DESIGN.md section 5: `email.message_from_bytes` does 1,250-3,600 msg/s before any
decoding; this module parses and decodes about 7,000 msg/s of the Enron mail on one core). It
reads only what the model and the engine need: the standard headers, the text of the body, the
bulk-mail signals and the names and types of attachments.

HTML is turned into text with lxml directly (12x faster than BeautifulSoup's lxml tree builder,
DESIGN.md section 5); BeautifulSoup with the lxml parser is the fallback for the documents lxml
refuses on its own. Scripts, styles and comments are dropped either way.
"""

from __future__ import annotations

import binascii
import codecs
import functools
import json
import logging
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import getaddresses, parsedate_to_datetime
from itertools import islice
from urllib.parse import unquote_to_bytes

logger = logging.getLogger(__name__)

# Caps, so that the time to parse one message is bounded whatever it holds (each is applied
# before the expensive step, and recorded in Message.defects when it cuts something). Real mail
# is far below all of them: in the Enron and SpamAssassin corpora the largest message is 300 KB,
# header section 44 KB, header value 33 KB, To+Cc 12 KB and HTML document 91 KB.

#: The body text kept on a Message; enough to classify and to find facts for the digest.
TEXT_CAP = 20_000
#: Raw bytes read at most; the engine fetches the header and the first 256 KB anyway.
MESSAGE_CAP = 2 * 1024 * 1024
#: Encoded bytes of one text part (or attached message) read at most.
PART_CAP = 256 * 1024
#: Characters of HTML handed to lxml: lxml's time grows with the number of tags, and senders
#: keep newsletters under 102 KB (where Gmail clips them).
HTML_CAP = 128 * 1024
#: Characters of HTML handed to BeautifulSoup, the fallback for what lxml refuses (12x slower).
SOUP_CAP = 32 * 1024
#: Header lines (folded ones included) read at most, over the message and all its parts.
MAX_HEADER_LINES = 5_000
#: One header's value kept at most: a 1 MB header line is cut here.
HEADER_VALUE_CAP = 64 * 1024
#: To or Cc characters parsed with email.utils.getaddresses (display names, quotes, groups); a
#: longer list is only scanned for addresses (getaddresses takes 50 ms on 256 KB).
ADDRESS_CAP = 8 * 1024
#: The same for From, Sender and Reply-To, which hold one address (real ones: under 200).
SENDER_CAP = 1024
#: Recipients kept per To or Cc header.
MAX_RECIPIENTS = 1_000
#: Characters of a Subject (before RFC 2047 decoding) read at most.
SUBJECT_CAP = 2_000
#: Characters of a Content-Type or Content-Disposition read, and parameters read at most.
PARAM_CAP = 2_048
MAX_PARAMS = 20
#: Lines that start like a MIME boundary but are not one, skipped at most (real mail has none).
MAX_LOOKALIKES = 1_000
#: Nesting of multiparts (and attached messages) followed at most.
MAX_DEPTH = 12
#: Parts looked at at most, so a message with 100,000 empty parts stays cheap.
MAX_PARTS = 200


@dataclass(frozen=True, slots=True)
class Attachment:
    """An attachment seen in a message: only its name, type and size are kept."""

    filename: str
    content_type: str
    size: int  # decoded size in bytes (estimated from the encoded size for base64)


#: The first defect of a message the parser could not read at all (a parser bug): such a
#: message is never filed.
UNREADABLE = "unreadable message"
#: How the Message-ID of a digest triage writes starts: triage never files its own digest.
DIGEST_ID_PREFIX = "<triage-digest."


@dataclass(frozen=True, slots=True)
class Message:
    """One parsed email. Every field has a safe empty value when the message lacks it."""

    key: str  # caller-provided id (e.g. "INBOX/123" or a file path)
    message_id: str = ""  # "<id@host>" with whitespace removed, "" if none
    sender: str = ""  # lower-cased address, "" if none
    sender_name: str = ""  # display name, RFC 2047 decoded
    to: tuple[str, ...] = ()  # lower-cased addresses
    cc: tuple[str, ...] = ()
    reply_to: str = ""
    subject: str = ""
    date: datetime | None = None  # timezone-aware UTC, None if missing or unparseable
    text: str = ""  # plain text body (HTML converted), at most TEXT_CAP characters
    html_only: bool = False
    link_count: int = 0
    image_count: int = 0
    list_unsubscribe: bool = False
    list_id: str = ""
    precedence: str = ""  # lower-cased, e.g. "bulk", "list", "junk"
    auto_submitted: str = ""  # lower-cased, e.g. "auto-generated"
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    size: int = 0  # length of the raw bytes
    defects: tuple[str, ...] = ()  # what could not be read, human-readable

    @property
    def sender_domain(self) -> str:
        """The domain of the sender's address, "" if there is none."""
        return self.sender.rpartition("@")[2] if "@" in self.sender else ""


def parse(data: bytes, key: str = "") -> Message:
    """Parse raw RFC 822 bytes into a Message; never raises on bad mail."""
    try:
        if not isinstance(data, bytes | bytearray | memoryview):
            return Message(key=key, defects=(f"not bytes: {type(data).__name__}",))
        return _Parser(bytes(data), key).run()
    except Exception as exc:  # the contract is "never raises": a parser bug must not stop a run
        logger.warning("could not parse message %s: %s", key, type(exc).__name__, exc_info=True)
        size = len(data) if isinstance(data, bytes | bytearray | memoryview) else 0
        return Message(key=key, size=size, defects=(f"{UNREADABLE} ({type(exc).__name__})",))


# --- headers -----------------------------------------------------------------------------------

_HEADER_LINE = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(\?=)\s+(=\?)")
_WS = re.compile(r"\s+")
_MSGID = re.compile(r"<[^<>\s]*>")
_RE_PREFIX = re.compile(r"^\s*(?:(?:re|fw|fwd|aw|wg|sv|vs|antw|tr)\s*(?:\[\d+\])?\s*:\s*)+", re.I)


def split_headers(data: bytes) -> tuple[dict[str, list[bytes]], bytes, list[str]]:
    """Split raw bytes into {lower-case name: [raw values]} and the body.

    Also returns the defects found. Tolerates a leading mbox "From " line, LF or CRLF line ends,
    missing separator lines and garbage lines in the header section. Reads at most
    MAX_HEADER_LINES lines, each value cut at HEADER_VALUE_CAP; the body still starts after the
    blank line.
    """
    headers, body, defects, _ = _split_headers(data, MAX_HEADER_LINES)
    return headers, body, defects


def _header_end(data: bytes) -> tuple[int, int] | None:
    """(start, end) of the first blank line (LF or CRLF) in `data`, None if there is none."""
    lf = data.find(b"\n\n")
    # A CRLF blank line only matters if it comes first: search no further than the LF one.
    crlf = data.find(b"\n\r\n", 0, lf + 2 if lf >= 0 else len(data))
    if crlf >= 0:
        i, end = crlf, crlf + 3
    elif lf >= 0:
        i, end = lf, lf + 2
    else:
        return None
    return (i - 1 if i > 0 and data[i - 1] == 13 else i), end  # 13 is "\r"


def _split_headers(
    data: bytes, budget: int
) -> tuple[dict[str, list[bytes]], bytes, list[str], int]:
    """`split_headers` reading at most `budget` header lines; also returns the lines read."""
    defects: list[str] = []
    if data.startswith(b"From "):  # an mbox separator line, as in the SpamAssassin corpus
        nl = data.find(b"\n")
        data = data[nl + 1 :] if nl >= 0 else b""
    if data.startswith((b"\n", b"\r\n")):
        return {}, data[data.find(b"\n") + 1 :], defects, 0
    end = _header_end(data)
    head, body = (data[: end[0]], data[end[1] :]) if end else (data, b"")
    headers: dict[str, list[bytes]] = {}
    name = ""
    folded: list[bytes] = []  # continuation lines of header `name`, joined once it is complete
    lines = head.split(b"\n", budget)  # past the budget, the last item is the unsplit rest
    used = 0
    for i, raw_line in enumerate(lines):
        if i == budget:
            defects.append(f"more than {MAX_HEADER_LINES} header lines: the rest ignored")
            break
        used += 1
        line = raw_line[:-1] if raw_line.endswith(b"\r") else raw_line
        if line[:1] in (b" ", b"\t"):
            if name:
                folded.append(line.strip())
            continue
        if folded:
            _unfold(headers[name], folded, defects)
            folded = []
        m = _HEADER_LINE.match(line, 0, HEADER_VALUE_CAP)
        if m is None:
            if not line.strip():
                continue
            # Not a header: the separator line is missing and the body starts here.
            defects.append("missing blank line between headers and body")
            body = b"\n".join(lines[i:]) + (b"\n" + body if end else b"")
            break
        name = m.group(1).decode("ascii").lower()
        value = line[m.end() :].strip()
        if len(value) > HEADER_VALUE_CAP:
            value = value[:HEADER_VALUE_CAP]
            defects.append(f"header line longer than {HEADER_VALUE_CAP // 1024} KB: cut")
        headers.setdefault(name, []).append(value)
    if folded:
        _unfold(headers[name], folded, defects)
    return headers, body, defects, used


def _unfold(values: list[bytes], folded: list[bytes], defects: list[str]) -> None:
    """Join a header's continuation lines to its last value, cut at HEADER_VALUE_CAP."""
    value = b" ".join([values[-1], *folded])
    if len(value) > HEADER_VALUE_CAP:
        value = value[:HEADER_VALUE_CAP]
        defects.append(f"header line longer than {HEADER_VALUE_CAP // 1024} KB: cut")
    values[-1] = value


def decode_bytes(raw: bytes, charset: str, defects: list[str], what: str) -> str:
    """Decode bytes declared as `charset`, falling back when the charset is unknown or wrong."""
    cs = charset.strip().strip("\"'").lower()
    if not raw:
        return ""
    # Every charset mail uses is an ASCII superset except UTF-16/32 and UTF-7.
    if raw.isascii() and not cs.startswith(("utf-16", "utf-32", "utf-7", "utf16", "utf32", "utf7")):
        return raw.decode("ascii")
    if cs in ("", "us-ascii", "ascii", "ansi_x3.4-1968", "default", "unknown-8bit"):
        # Undeclared or mislabelled 8-bit text: UTF-8 if it is valid, else Windows-1252.
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        if cs:
            defects.append(f"{what}: 8-bit text declared {cs}, decoded as windows-1252")
        return raw.decode("cp1252", errors="replace")
    codec = _codec(cs)
    if codec is None:
        fallback = _fallback(raw)
        defects.append(f"{what}: unknown charset {cs[:40]!r}, decoded as {fallback}")
        return raw.decode(fallback, errors="replace")
    if codec == "iso8859-1":
        # Mail declared Latin-1 is nearly always Windows-1252 (curly quotes in 0x80-0x9f).
        codec = cs = "cp1252"
    try:
        text = raw.decode(codec)
        return _scrub(text, defects, what) if codec in _SURROGATE_CODECS else text
    except UnicodeDecodeError:
        fallback = _fallback(raw)
        defects.append(f"{what}: bytes invalid in declared charset {cs}, decoded as {fallback}")
        return raw.decode(fallback, errors="replace")
    except (LookupError, ValueError, TypeError):  # a codec that is not a text encoding ("hex")
        fallback = _fallback(raw)
        defects.append(f"{what}: charset {cs[:40]!r} is not a text encoding, decoded as {fallback}")
        return raw.decode(fallback, errors="replace")


#: Codecs that can decode to lone surrogates, which UTF-8 (SQLite, JSON) cannot store.
_SURROGATE_CODECS = frozenset({"utf-7", "unicode-escape", "raw-unicode-escape"})
_CODEC_PUNCT = re.compile(r"[^0-9a-z.]+")


def _known_codecs() -> frozenset[str]:
    """Every codec name and alias of the standard library, normalised as `_codec` does."""
    import encodings
    import encodings.aliases
    import pkgutil

    names = set(encodings.aliases.aliases) | set(encodings.aliases.aliases.values())
    names.update(m.name for m in pkgutil.iter_modules(encodings.__path__))
    return frozenset(_CODEC_PUNCT.sub("_", n.lower()).strip("_") for n in names)


_KNOWN_CODECS = _known_codecs()


@functools.lru_cache(maxsize=512)
def _codec(charset: str) -> str | None:
    """Python's name for a (lower-cased) charset, None if the standard library has no such codec.

    Unknown names never reach codecs.lookup, which would try to import a module for each one and
    remember every miss: a stream of made-up charsets would cost time and memory for good.
    """
    if len(charset) > 40:
        return None
    norm = _CODEC_PUNCT.sub("_", charset).strip("_")
    if norm not in _KNOWN_CODECS and norm.replace(".", "_") not in _KNOWN_CODECS:
        return None
    try:
        return codecs.lookup(charset).name
    except (LookupError, ValueError, TypeError):
        return None


def _scrub(text: str, defects: list[str], what: str) -> str:
    """`text` without lone surrogates (UTF-7 and the escape codecs can make them)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        defects.append(f"{what}: lone surrogates replaced")
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _fallback(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _header_str(raw: bytes, name: str, defects: list[str], hint: str = "") -> str:
    """A header's bytes as text: ASCII, or UTF-8 (RFC 6532), or a recorded best guess.

    `hint` is the charset of the message body: raw 8-bit headers are nearly always in it.
    """
    if raw.isascii():
        if b"\x1b$" in raw:  # raw ISO-2022-JP (7-bit escape sequences), common in Japanese mail
            try:
                return raw.decode("iso-2022-jp")
            except UnicodeDecodeError:
                pass
        return raw.decode("ascii")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    codec = _codec(hint) if hint and hint not in ("us-ascii", "ascii", "utf-8") else None
    if codec is not None:
        try:
            text = raw.decode(codec)
        except (LookupError, ValueError, TypeError):
            pass
        else:
            defects.append(f"8-bit {name} header: decoded as {hint[:40]} (the body's charset)")
            return _scrub(text, defects, name) if codec in _SURROGATE_CODECS else text
    defects.append(f"8-bit {name} header: decoded as windows-1252")
    return raw.decode("cp1252", errors="replace")


def decode_words(value: str, defects: list[str]) -> str:
    """Decode RFC 2047 encoded words (`=?charset?B?...?=`) in a header value."""
    if "=?" not in value:
        return value
    value = _BETWEEN_WORDS.sub(r"\1\2", value)  # whitespace between encoded words is not text

    def one(m: re.Match[str]) -> str:
        charset, enc, payload = m.group(1).split("*", 1)[0], m.group(2).upper(), m.group(3)
        try:
            if enc == "B":
                raw = _b64(payload.encode("ascii", "replace"))
            else:
                raw = binascii.a2b_qp(payload.encode("ascii", "replace"), header=True)
        except (binascii.Error, ValueError):
            defects.append("damaged encoded word in header")
            return m.group(0)
        return decode_bytes(raw, charset, defects, "header")

    return _ENCODED_WORD.sub(one, value)


def _b64(raw: bytes) -> bytes:
    raw = re.sub(rb"[^A-Za-z0-9+/]", b"", raw)
    raw = raw[: len(raw) - len(raw) % 4] if len(raw) % 4 == 1 else raw + b"=" * (-len(raw) % 4)
    return binascii.a2b_base64(raw)


# An address-looking word; the lookbehind makes it start only where a word starts, so 64 KB
# without an "@" is scanned once, not once per character.
_ADDR_SPEC = re.compile(r'(?<![^\s<>()\[\],;:"@])[^\s<>()\[\],;:"@]+@[^\s<>()\[\],;:"@]+')


def _addresses(
    values: list[str], defects: list[str], cap: int = ADDRESS_CAP
) -> list[tuple[str, str]]:
    """(display name, lower-cased address) pairs; names RFC 2047 decoded.

    At most MAX_RECIPIENTS; a header longer than `cap` is only scanned for addresses.
    """
    out: list[tuple[str, str]] = []
    size = sum(map(len, values))
    if size > cap:
        found = _ADDR_SPEC.finditer(" ".join(values))
        addresses = dict.fromkeys(m.group().lower() for m in islice(found, MAX_RECIPIENTS))
        defects.append(
            f"address header of {size // 1024} KB: read {len(addresses)} addresses, no names"
        )
        return [("", a) for a in addresses]
    pairs = _simple_addresses(values)
    if pairs is None:
        try:
            pairs = getaddresses(values)
        except Exception:  # getaddresses has raised on hostile input in some Python versions
            defects.append("unreadable address header")
            return out
    for name, addr in pairs:
        addr = addr.strip().strip("<>").lower()
        if not addr and not name:
            continue
        if addr and "@" not in addr and " " in addr:
            continue  # a group name or junk, not an address
        if len(out) == MAX_RECIPIENTS:
            defects.append(f"more than {MAX_RECIPIENTS} addresses in a header: the rest ignored")
            break
        out.append((_WS.sub(" ", decode_words(name, defects)).strip().strip("\"'"), addr))
    return out


# Headers with none of these are plain lists of `Name <addr>` or `addr`: no quoted strings,
# comments, groups, escapes or domain literals for the stdlib's full parser to handle.
_NOT_SIMPLE = re.compile(r'["()\\;:\[\]]')
_ADDR = r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*@[\w-]+(?:\.[\w-]+)*"
_SIMPLE_ADDRESS = re.compile(rf"\s*(?:([^<>@]*?)\s*<({_ADDR})>|({_ADDR}))\s*", re.ASCII)


def _simple_addresses(values: list[str]) -> list[tuple[str, str]] | None:
    """getaddresses(values) for plain address lists (most real headers), several times
    faster; None when a value needs the full parser."""
    pairs: list[tuple[str, str]] = []
    for value in values:
        if _NOT_SIMPLE.search(value):
            return None
        for piece in value.split(","):
            if not piece.strip():
                continue
            m = _SIMPLE_ADDRESS.fullmatch(piece)
            if m is None:
                return None
            if m.group(3) is not None:
                pairs.append(("", m.group(3)))
            else:
                pairs.append((" ".join(m.group(1).split()), m.group(2)))
    return pairs


def normalise_subject(subject: str) -> str:
    """The subject without Re:/Fwd: prefixes, lower-cased, whitespace collapsed (thread key)."""
    return _WS.sub(" ", _RE_PREFIX.sub("", subject)).strip().lower()


# One parameter: text and quoted strings up to a semicolon outside quotes (a quote left open
# runs to the end). Matching a whole parameter at once keeps the loop in C whatever the quotes.
_PARAM_TEXT = re.compile(r'(?:[^;"]+|"[^"]*"?)*')
_CONTINUED = re.compile(r"([^*]+)\*(\d{1,4})?(\*)?")  # RFC 2231: name*0*=, name*1=, name*=


def _split_quoted(value: str, limit: int) -> list[str]:
    """Split on semicolons outside double quotes, into at most `limit` parts."""
    parts: list[str] = []
    pos = 0
    while len(parts) < limit:
        m = _PARAM_TEXT.match(value, pos)
        parts.append(m.group() if m else "")
        pos = m.end() if m else len(value)
        if pos >= len(value):
            break
        pos += 1  # the semicolon
    return parts


def _params(value: str, defects: list[str] | None = None) -> tuple[str, dict[str, str]]:
    """Split `type/sub; a=1; b="x; y"` into ("type/sub", {a: 1, b: "x; y"}), RFC 2231 aware.

    Reads at most PARAM_CAP characters and MAX_PARAMS parameters (`defects` says so).
    """
    cut: list[str] = []
    if len(value) > PARAM_CAP:
        value = value[:PARAM_CAP]
        cut.append(f"MIME header longer than {PARAM_CAP} characters: cut")
    if '"' not in value:
        parts = value.split(";", MAX_PARAMS + 1)
    else:
        parts = _split_quoted(value, MAX_PARAMS + 2)
    if len(parts) > MAX_PARAMS + 1:
        parts = parts[: MAX_PARAMS + 1]
        cut.append(f"more than {MAX_PARAMS} MIME parameters: the rest ignored")
    if cut and defects is not None:
        defects.extend(cut)
    main = parts[0].strip().lower()
    params: dict[str, str] = {}
    continued: dict[str, list[tuple[int, str, bool]]] = {}
    for part in parts[1:]:
        key, sep, val = part.partition("=")
        if not sep:
            continue
        key, val = key.strip().lower(), val.strip()
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        m = _CONTINUED.fullmatch(key)
        if m is None:
            params.setdefault(key, val)
        else:
            continued.setdefault(m.group(1), []).append(
                (int(m.group(2) or 0), val, m.group(3) is not None or m.group(2) is None)
            )
    for key, pieces in continued.items():
        pieces.sort()
        charset = "utf-8"
        chunks: list[bytes] = []
        for n, val, encoded in pieces:
            if encoded:
                if n == 0 and val.count("'") >= 2:
                    charset, _, val = val.split("'", 2)
                chunks.append(unquote_to_bytes(val))
            else:
                chunks.append(val.encode("utf-8", "replace"))
        params[key] = decode_bytes(b"".join(chunks), charset or "utf-8", [], "parameter")
    return main, params


# --- bodies ------------------------------------------------------------------------------------

_IMG = re.compile(rb"<img\b", re.I)
# [^<>] rather than [^>]: each "<a" then scans only up to the next tag, so 100,000 "<a " without
# a ">" cost linear time, not quadratic.
_HREF = re.compile(rb"<a\b[^<>]*\bhref", re.I)
_TAG = re.compile(r"<[^<>]*>")
_BLANKS = re.compile(rb"[ \t]*")
_URL = re.compile(r"\bhttps?://", re.I)
_XML_DECL = re.compile(r"^(?:\s*<\?xml[^>]*>)+", re.I)


_B64_PREFIX = re.compile(rb"[A-Za-z0-9+/\s]*")


def _decode_transfer(raw: bytes, cte: str, defects: list[str]) -> bytes:
    if cte == "base64":
        try:
            return binascii.a2b_base64(raw, strict_mode=False)
        except (binascii.Error, ValueError):
            pass
        # Damaged base64: decode the clean part up to the first foreign character, since what
        # follows it is misaligned and would decode to noise.
        m = _B64_PREFIX.match(raw)
        good = re.sub(rb"\s", b"", m.group(0) if m else b"")
        if len(good) % 4 == 1:
            good = good[:-1]
        good += b"=" * (-len(good) % 4)
        defects.append("damaged base64: decoded the readable start")
        try:
            return binascii.a2b_base64(good)
        except (binascii.Error, ValueError):
            return b""
    if cte == "quoted-printable":
        return binascii.a2b_qp(raw)
    if cte in ("", "7bit", "8bit", "binary") or cte.startswith("x-"):
        # x-uuencode and the like: rare, kept undecoded rather than guessed
        return raw
    defects.append(f"unknown transfer encoding {cte[:30]!r}: read as is")
    return raw


def html_to_text(html: str) -> tuple[str, int, int]:
    """(text, link count, image count) of an HTML document, scripts and styles dropped.

    Callers cap the document at HTML_CAP; the BeautifulSoup fallback reads SOUP_CAP of it.
    """
    html = _XML_DECL.sub("", html, count=1)  # lxml refuses str input with an encoding declaration
    if not html or html.isspace():
        return "", 0, 0
    try:
        return _html_lxml(html)
    except Exception:  # lxml gives up on some broken documents; BeautifulSoup is more forgiving
        return _html_soup(html[:SOUP_CAP])


def _html_lxml(html: str) -> tuple[str, int, int]:
    from lxml import etree

    doc = etree.fromstring(html, _LXML_PARSER)
    if doc is None:  # nothing but comments and blanks (lxml.html would raise "Document is empty")
        return "", 0, 0
    links = len(doc.xpath("//a[@href]"))
    images = len(doc.xpath("//img"))
    etree.strip_elements(doc, "script", "style", "template", etree.Comment, with_tail=False)
    text = " ".join(doc.itertext())
    return _WS.sub(" ", text).strip(), links, images


def _html_soup(html: str) -> tuple[str, int, int]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    links = len(soup.find_all("a", href=True))
    images = len(soup.find_all("img"))
    for tag in soup(["script", "style", "template"]):
        tag.decompose()
    return _WS.sub(" ", soup.get_text(" ")).strip(), links, images


def _make_lxml_parser() -> object:
    from lxml import etree

    # etree's parser, not lxml.html's: that one looks up a Python class for every element.
    return etree.HTMLParser(remove_comments=True, remove_pis=True, no_network=True)


_LXML_PARSER = _make_lxml_parser()


@dataclass
class _Part:
    content_type: str
    params: dict[str, str]
    disposition: str
    filename: str
    cte: str
    body: bytes
    headers: dict[str, list[bytes]] = field(default_factory=dict)


class _Parser:
    """One parse; collects fields and defects while walking the MIME tree."""

    def __init__(self, data: bytes, key: str) -> None:
        self.data = data
        self.key = key
        self.defects: list[str] = []
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[Attachment] = []
        self.link_count = 0
        self.image_count = 0
        self.parts_seen = 0
        self.text_len = 0
        # Set once an HTML part gave link counts, so URLs in the plain text are not counted too.
        self.html_link_counted = False
        self.hint = ""  # the top-level charset, for decoding raw 8-bit headers
        self.header_lines = MAX_HEADER_LINES  # left to read, over the message and its parts
        self.lookalikes = MAX_LOOKALIKES  # lines starting "--boundary" that are not delimiters

    def split(self, data: bytes) -> tuple[dict[str, list[bytes]], bytes, list[str]]:
        """`split_headers` within what is left of MAX_HEADER_LINES."""
        headers, body, defects, used = _split_headers(data, self.header_lines)
        self.header_lines -= used
        return headers, body, defects

    def header(self, headers: dict[str, list[bytes]], name: str) -> str:
        values = headers.get(name)
        if not values:
            return ""
        return _header_str(values[0], name, self.defects, self.hint)

    def run(self) -> Message:
        data = self.data
        if not data:
            return Message(key=self.key, defects=("empty message",))
        if len(data) > MESSAGE_CAP:
            data = data[:MESSAGE_CAP]
            self.defects.append(f"message larger than {MESSAGE_CAP // 2**20} MB: the rest skipped")
        headers, body, defects = self.split(data)
        self.defects.extend(defects)
        if not headers:
            self.defects.append("no headers")
        top_type = headers.get("content-type")
        if top_type and top_type[0].isascii():
            self.hint = _params(top_type[0].decode("ascii"))[1].get("charset", "").lower()
        h = self.header
        d = self.defects

        senders = _addresses([h(headers, "from")], d, SENDER_CAP) if "from" in headers else []
        if not senders and "sender" in headers:
            senders = _addresses([h(headers, "sender")], d, SENDER_CAP)
        sender_name, sender = senders[0] if senders else ("", "")
        to = tuple(a for _, a in _addresses([h(headers, "to")], d) if a) if "to" in headers else ()
        cc = tuple(a for _, a in _addresses([h(headers, "cc")], d) if a) if "cc" in headers else ()
        reply = _addresses([h(headers, "reply-to")], d, SENDER_CAP) if "reply-to" in headers else []
        raw_subject = h(headers, "subject")
        if len(raw_subject) > SUBJECT_CAP:
            raw_subject = raw_subject[:SUBJECT_CAP]
            d.append(f"Subject longer than {SUBJECT_CAP} characters: cut")
        subject = _WS.sub(" ", decode_words(raw_subject, d)).strip()

        date = None
        raw_date = h(headers, "date")
        if raw_date:
            date = self.parse_date(raw_date[:SUBJECT_CAP])

        raw_id = "".join(h(headers, "message-id").split())  # "< a@b >" is still <a@b>
        ids = _MSGID.findall(raw_id)
        message_id = ids[0] if ids else raw_id[:200]
        irt = _MSGID.findall(h(headers, "in-reply-to"))
        refs = tuple(_MSGID.findall(h(headers, "references")))[-20:]
        list_id = h(headers, "list-id")[:SUBJECT_CAP]

        self.walk(headers, body, 0)
        text = "\n".join(self.plain)
        html_only = not text.strip() and bool(self.html)
        if html_only:
            text = "\n".join(self.html)
        if not self.html_link_counted:
            self.link_count += len(_URL.findall(text))
        if len(text) > TEXT_CAP:
            text = text[:TEXT_CAP]
            self.defects.append(f"body text cut at {TEXT_CAP} characters")

        return Message(
            key=self.key,
            message_id=message_id,
            sender=sender,
            sender_name=sender_name,
            to=to,
            cc=cc,
            reply_to=reply[0][1] if reply else "",
            subject=subject,
            date=date,
            text=text,
            html_only=html_only,
            link_count=self.link_count,
            image_count=self.image_count,
            list_unsubscribe="list-unsubscribe" in headers,
            list_id=_WS.sub(" ", decode_words(list_id, d)).strip()[:200],
            precedence=h(headers, "precedence").strip().lower()[:40],
            auto_submitted=h(headers, "auto-submitted").strip().lower()[:40],
            in_reply_to=irt[0] if irt else "",
            references=refs,
            attachments=tuple(self.attachments),
            size=len(self.data),
            defects=tuple(dict.fromkeys(self.defects)),  # same defect in 50 parts: say it once
        )

    def parse_date(self, raw: str) -> datetime | None:
        try:
            date = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError, OverflowError):
            self.defects.append("unreadable Date header")
            return None
        if date.tzinfo is None:  # "-0000" means UTC with no zone information (RFC 5322)
            return date.replace(tzinfo=UTC)
        try:
            return date.astimezone(UTC)
        except (ValueError, OverflowError):
            self.defects.append("unreadable Date header")
            return None

    def walk(self, headers: dict[str, list[bytes]], body: bytes, depth: int) -> None:
        """Collect text, HTML and attachments from one entity and its children."""
        self.parts_seen += 1
        if self.parts_seen > MAX_PARTS:
            if self.parts_seen == MAX_PARTS + 1:
                self.defects.append(f"more than {MAX_PARTS} MIME parts: the rest skipped")
            return
        part = self.describe(headers, body)
        main = part.content_type.partition("/")[0]
        if main == "multipart":
            if depth >= MAX_DEPTH:
                self.defects.append("MIME nesting too deep: inner parts skipped")
                return
            boundary = part.params.get("boundary", "")
            if not boundary:
                self.defects.append("multipart without boundary: read as text")
                self.add_text(_Part("text/plain", {}, "", "", part.cte, body), depth)
                return
            children = list(self.split_multipart(body, boundary))
            if part.content_type == "multipart/alternative":
                # Read one alternative: the plain text if there is one, else the last (richest).
                kinds = [self.describe(ch, cb).content_type for ch, cb in children]
                if "text/plain" in kinds:
                    if "text/html" in kinds:
                        hb = children[kinds.index("text/html")][1]
                        self.count_html(hb)
                    children = [children[kinds.index("text/plain")]]
            for child_headers, child_body in children:
                self.walk(child_headers, child_body, depth + 1)
            return
        if part.content_type in ("message/rfc822", "message/global") and not part.disposition:
            if depth >= MAX_DEPTH:
                self.defects.append("MIME nesting too deep: inner parts skipped")
                return
            inner = _decode_transfer(body[:PART_CAP], part.cte, self.defects)
            inner_headers, inner_body, defects = self.split(inner)
            self.defects.extend(defects)
            self.walk(inner_headers, inner_body, depth + 1)
            return
        is_text = part.content_type in ("text/plain", "text/html", "text/enriched")
        if is_text and part.disposition != "attachment":
            self.add_text(part, depth)
            return
        if main == "image":
            self.image_count += 1
        size = len(body)
        if part.cte == "base64":
            size = (size - body.count(b"\n") - body.count(b"\r")) * 3 // 4
        self.attachments.append(Attachment(part.filename, part.content_type, max(size, 0)))

    def count_html(self, body: bytes) -> None:
        """Link and image counts of an HTML alternative that is not converted to text."""
        raw = body[:HTML_CAP]
        self.link_count += len(_HREF.findall(raw))
        self.image_count += len(_IMG.findall(raw))
        self.html_link_counted = True

    def describe(self, headers: dict[str, list[bytes]], body: bytes) -> _Part:
        ct_raw = self.header(headers, "content-type")
        if ct_raw:
            content_type, params = _params(ct_raw, self.defects)
            if "/" not in content_type:
                self.defects.append(f"unreadable Content-Type {content_type[:40]!r}: read as text")
                content_type = "text/plain"
        else:
            content_type, params = "text/plain", {}
        disp_raw = self.header(headers, "content-disposition")
        disposition, dparams = _params(disp_raw, self.defects) if disp_raw else ("", {})
        filename = dparams.get("filename") or params.get("name") or ""
        filename = decode_words(filename, self.defects).strip()[:200]
        cte = self.header(headers, "content-transfer-encoding").strip().lower()
        return _Part(content_type, params, disposition, filename, cte, body, headers)

    def split_multipart(
        self, body: bytes, boundary: str
    ) -> Iterator[tuple[dict[str, list[bytes]], bytes]]:
        """The parts of a multipart body: at most one more than MAX_PARTS leaves, so that `walk`
        records the cut without this splitting 100,000 parts first."""
        # bytes.find, not a regular expression: compiling one per boundary costs more than
        # parsing a whole message, and find skips to the next "--boundary" at C speed.
        marker = b"--" + boundary.encode("utf-8", "replace")
        line_marker = b"\n" + marker
        room = MAX_PARTS - self.parts_seen + 1
        size = len(body)
        pos = None  # where the current part starts
        closed = False
        search = 0
        i: int | None = 0 if body.startswith(marker) else None  # a marker at a line start
        while room > 0:
            if i is None:
                nl = body.find(line_marker, search)
                if nl < 0:
                    break
                i = nl + 1
            search = i + len(marker)
            # A delimiter is the marker, "--" if it is the last one, blanks, then the line end.
            last = body.startswith(b"--", search)
            blanks = _BLANKS.match(body, search + 2 if last else search)
            end = blanks.end() if blanks else search
            if end < size and body[end] != 10 and not body.startswith(b"\r\n", end):  # 10: "\n"
                i = None
                self.lookalikes -= 1
                if self.lookalikes < 0:  # each costs a turn of this loop: bound them
                    self.defects.append(
                        f"more than {MAX_LOOKALIKES} lines look like MIME boundaries: "
                        "the rest read as one part"
                    )
                    break
                continue
            if pos is not None:
                start = i - 2 if i > 1 and body[i - 2] == 13 else max(i - 1, 0)  # 13: "\r"
                yield self.entity(body[pos:start])
                room -= 1
            if last:
                closed = True
                break
            nl = body.find(b"\n", end)
            pos = nl + 1 if nl >= 0 else size
            i = None
        if pos is None:
            self.defects.append("multipart boundary not found: body read as text")
            yield {"content-type": [b"text/plain"]}, body
            return
        if not closed and room > 0:
            if self.lookalikes >= 0:
                self.defects.append("truncated multipart (no closing boundary)")
            rest = body[pos:]
            if rest and not rest.isspace():
                yield self.entity(rest)

    def entity(self, raw: bytes) -> tuple[dict[str, list[bytes]], bytes]:
        if raw.startswith((b"\n", b"\r\n")):  # a part with no headers: text/plain by default
            return {}, raw.split(b"\n", 1)[1]
        headers, body, defects = self.split(raw)
        self.defects.extend(defects)
        return headers, body

    def add_text(self, part: _Part, depth: int) -> None:
        if self.text_len > TEXT_CAP:
            return
        body = part.body
        if len(body) > PART_CAP:
            self.defects.append(f"{part.content_type} part larger than {PART_CAP // 1024} KB: cut")
            body = body[:PART_CAP]
        raw = _decode_transfer(body, part.cte, self.defects)
        text = decode_bytes(raw, part.params.get("charset", ""), self.defects, part.content_type)
        if part.content_type == "text/html":
            if len(text) > HTML_CAP:
                text = text[:HTML_CAP]
                self.defects.append(f"HTML longer than {HTML_CAP // 1024}K characters: cut")
            try:
                text, links, images = html_to_text(text)
            except Exception:  # lxml and bs4 both failed: keep the text, not the tags
                self.defects.append("unreadable HTML: tags stripped")
                text, links, images = _WS.sub(" ", _TAG.sub(" ", text)), 0, 0
            self.link_count += links
            self.image_count += images
            self.html_link_counted = True
            self.html.append(text)
        else:
            if "\r" in text:
                text = text.replace("\r\n", "\n")
            self.plain.append(text)
        self.text_len += len(text)


#: Body characters kept when a message is stored as a training example (the model reads fewer).
STORED_TEXT = 8000


def to_bytes(message: Message) -> bytes:
    """A compact, lossless-enough copy of what the model reads, for the state database."""
    fields = {f: getattr(message, f) for f in Message.__dataclass_fields__}
    fields["text"] = message.text[:STORED_TEXT]
    fields["date"] = message.date.isoformat() if message.date else None
    fields["attachments"] = [[a.filename, a.content_type, a.size] for a in message.attachments]
    return zlib.compress(json.dumps(fields, ensure_ascii=False).encode("utf-8"), 6)


def from_bytes(data: bytes) -> Message:
    """The inverse of `to_bytes`."""
    fields = json.loads(zlib.decompress(data).decode("utf-8"))
    fields["date"] = datetime.fromisoformat(fields["date"]) if fields["date"] else None
    fields["attachments"] = tuple(Attachment(*a) for a in fields["attachments"])
    for name in ("to", "cc", "references", "defects"):
        fields[name] = tuple(fields[name])
    return Message(**fields)

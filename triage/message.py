"""A parsed email: `parse(bytes) -> Message`.

Pure and total: `parse` never raises on bad mail. Whatever it could not read (an unknown or wrong
charset, a broken MIME structure, damaged base64, a truncated message) is recorded as a
human-readable string in `Message.defects`, and the rest of the message is still used.

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
import json
import logging
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import getaddresses, parsedate_to_datetime
from urllib.parse import unquote_to_bytes

logger = logging.getLogger(__name__)

#: The body text kept on a Message; enough to classify and to find facts for the digest.
TEXT_CAP = 20_000
#: Encoded bytes of one part read at most: big enough for any real text, bounded for hostile input.
PART_CAP = 512 * 1024
#: Header section read at most; real headers are a few KB, spam with 1 MB of headers exists.
HEADER_CAP = 256 * 1024
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
        return Message(key=key, size=size, defects=(f"unreadable message ({type(exc).__name__})",))


# --- headers -----------------------------------------------------------------------------------

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_HEADER_LINE = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(\?=)\s+(=\?)")
_WS = re.compile(r"\s+")
_MSGID = re.compile(r"<[^<>\s]*>")
_RE_PREFIX = re.compile(r"^\s*(?:(?:re|fw|fwd|aw|wg|sv|vs|antw|tr)\s*(?:\[\d+\])?\s*:\s*)+", re.I)


def split_headers(data: bytes) -> tuple[dict[str, list[bytes]], bytes, list[str]]:
    """Split raw bytes into {lower-case name: [raw values]} and the body.

    Also returns the defects found. Tolerates a leading mbox "From " line, LF or CRLF line ends,
    missing separator lines and garbage lines in the header section.
    """
    defects: list[str] = []
    if data.startswith(b"From "):  # an mbox separator line, as in the SpamAssassin corpus
        nl = data.find(b"\n")
        data = data[nl + 1 :] if nl >= 0 else b""
    match = _HEADER_END.search(data, 0, HEADER_CAP)
    if data.startswith((b"\n", b"\r\n")):
        head, body = b"", data.split(b"\n", 1)[1] if b"\n" in data else b""
    elif match:
        head, body = data[: match.start()], data[match.end() :]
    else:
        head, body = data[:HEADER_CAP], data[HEADER_CAP:]
    headers: dict[str, list[bytes]] = {}
    name = ""
    lines = head.split(b"\n")
    for i, raw_line in enumerate(lines):
        line = raw_line[:-1] if raw_line.endswith(b"\r") else raw_line
        if line[:1] in (b" ", b"\t"):
            if name:
                headers[name][-1] += b" " + line.strip()
            continue
        m = _HEADER_LINE.match(line)
        if m is None:
            if not line.strip():
                continue
            # Not a header: the separator line is missing and the body starts here.
            defects.append("missing blank line between headers and body")
            body = b"\n".join(lines[i:]) + (b"\n" + body if match else b"")
            break
        name = m.group(1).decode("ascii").lower()
        headers.setdefault(name, []).append(line[m.end() :].strip())
    return headers, body, defects


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
    try:
        codecs.lookup(cs)
    except (LookupError, ValueError, TypeError):
        fallback = _fallback(raw)
        defects.append(f"{what}: unknown charset {cs[:40]!r}, decoded as {fallback}")
        return raw.decode(fallback, errors="replace")
    if cs in ("iso-8859-1", "latin-1", "latin1", "iso8859-1", "iso_8859-1"):
        # Mail declared Latin-1 is nearly always Windows-1252 (curly quotes in 0x80-0x9f).
        cs = "cp1252"
    try:
        return raw.decode(cs)
    except UnicodeDecodeError:
        fallback = _fallback(raw)
        defects.append(f"{what}: bytes invalid in declared charset {cs}, decoded as {fallback}")
        return raw.decode(fallback, errors="replace")
    except (LookupError, ValueError, TypeError):  # a codec that is not a text encoding ("hex")
        fallback = _fallback(raw)
        defects.append(f"{what}: charset {cs[:40]!r} is not a text encoding, decoded as {fallback}")
        return raw.decode(fallback, errors="replace")


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
    if hint and hint not in ("us-ascii", "ascii", "utf-8"):
        try:
            text = raw.decode(hint)
        except (LookupError, ValueError, TypeError):
            pass
        else:
            defects.append(f"8-bit {name} header: decoded as {hint} (the body's charset)")
            return text
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


def _addresses(values: list[str], defects: list[str]) -> list[tuple[str, str]]:
    """(display name, lower-cased address) pairs; names RFC 2047 decoded."""
    out: list[tuple[str, str]] = []
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
        out.append((_WS.sub(" ", decode_words(name, defects)).strip().strip("\"'"), addr))
    return out


def normalise_subject(subject: str) -> str:
    """The subject without Re:/Fwd: prefixes, lower-cased, whitespace collapsed (thread key)."""
    return _WS.sub(" ", _RE_PREFIX.sub("", subject)).strip().lower()


def _split_quoted(value: str) -> list[str]:
    """Split on semicolons outside double quotes."""
    parts: list[str] = []
    buf: list[str] = []
    quoted = False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == ";" and not quoted:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return parts


def _params(value: str) -> tuple[str, dict[str, str]]:
    """Split `type/sub; a=1; b="x; y"` into ("type/sub", {a: 1, b: "x; y"}), RFC 2231 aware."""
    parts = value.split(";") if '"' not in value else _split_quoted(value)
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
        m = re.fullmatch(r"([^*]+)\*(\d+)?(\*)?", key)
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
_HREF = re.compile(rb"<a\b[^>]*\bhref", re.I)
_URL = re.compile(r"\bhttps?://", re.I)
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*>", re.I)


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
    """(text, link count, image count) of an HTML document, scripts and styles dropped."""
    html = _XML_DECL.sub("", html, count=1)  # lxml refuses str input with an encoding declaration
    if not html.strip():
        return "", 0, 0
    try:
        return _html_lxml(html)
    except Exception:  # lxml gives up on some broken documents; BeautifulSoup is more forgiving
        return _html_soup(html)


def _html_lxml(html: str) -> tuple[str, int, int]:
    import lxml.html
    from lxml import etree

    doc = lxml.html.document_fromstring(html, parser=_LXML_PARSER)
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
    import lxml.html

    return lxml.html.HTMLParser(remove_comments=True, remove_pis=True, no_network=True)


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

    def header(self, headers: dict[str, list[bytes]], name: str) -> str:
        values = headers.get(name)
        if not values:
            return ""
        return _header_str(values[0], name, self.defects, self.hint)

    def run(self) -> Message:
        data = self.data
        if not data:
            return Message(key=self.key, defects=("empty message",))
        headers, body, defects = split_headers(data)
        self.defects.extend(defects)
        if not headers:
            self.defects.append("no headers")
        top_type = headers.get("content-type")
        if top_type and top_type[0].isascii():
            self.hint = _params(top_type[0].decode("ascii"))[1].get("charset", "").lower()
        h = self.header
        d = self.defects

        senders = _addresses([h(headers, "from")], d) if "from" in headers else []
        if not senders and "sender" in headers:
            senders = _addresses([h(headers, "sender")], d)
        sender_name, sender = senders[0] if senders else ("", "")
        to = tuple(a for _, a in _addresses([h(headers, "to")], d) if a) if "to" in headers else ()
        cc = tuple(a for _, a in _addresses([h(headers, "cc")], d) if a) if "cc" in headers else ()
        reply = _addresses([h(headers, "reply-to")], d) if "reply-to" in headers else []
        subject = _WS.sub(" ", decode_words(h(headers, "subject"), d)).strip()

        date = None
        raw_date = h(headers, "date")
        if raw_date:
            date = self.parse_date(raw_date)

        raw_id = "".join(h(headers, "message-id").split())  # "< a@b >" is still <a@b>
        ids = _MSGID.findall(raw_id)
        message_id = ids[0] if ids else raw_id[:200]
        irt = _MSGID.findall(h(headers, "in-reply-to"))
        refs = tuple(_MSGID.findall(h(headers, "references")))[-20:]

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
            list_id=_WS.sub(" ", decode_words(h(headers, "list-id"), d)).strip()[:200],
            precedence=h(headers, "precedence").strip().lower()[:40],
            auto_submitted=h(headers, "auto-submitted").strip().lower()[:40],
            in_reply_to=irt[0] if irt else "",
            references=refs,
            attachments=tuple(self.attachments),
            size=len(data),
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
            inner_headers, inner_body, defects = split_headers(inner)
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
        raw = body[:PART_CAP]
        self.link_count += len(_HREF.findall(raw))
        self.image_count += len(_IMG.findall(raw))
        self.html_link_counted = True

    def describe(self, headers: dict[str, list[bytes]], body: bytes) -> _Part:
        ct_raw = self.header(headers, "content-type")
        if ct_raw:
            content_type, params = _params(ct_raw)
            if "/" not in content_type:
                self.defects.append(f"unreadable Content-Type {content_type[:40]!r}: read as text")
                content_type = "text/plain"
        else:
            content_type, params = "text/plain", {}
        disp_raw = self.header(headers, "content-disposition")
        disposition, dparams = _params(disp_raw) if disp_raw else ("", {})
        filename = dparams.get("filename") or params.get("name") or ""
        filename = decode_words(filename, self.defects).strip()[:200]
        cte = self.header(headers, "content-transfer-encoding").strip().lower()
        return _Part(content_type, params, disposition, filename, cte, body, headers)

    def split_multipart(
        self, body: bytes, boundary: str
    ) -> Iterator[tuple[dict[str, list[bytes]], bytes]]:
        delim = re.compile(
            rb"(?:^|\r?\n)--" + re.escape(boundary.encode("utf-8", "replace")) + rb"(--)?[ \t]*"
            rb"(?=\r?\n|$)"
        )
        pos = None
        closed = False
        for m in delim.finditer(body):
            if pos is not None:
                part = body[pos : m.start()]
                yield self.entity(part)
            if m.group(1):
                closed = True
                break
            nl = body.find(b"\n", m.end())
            pos = nl + 1 if nl >= 0 else len(body)
        if pos is None:
            self.defects.append("multipart boundary not found: body read as text")
            yield {"content-type": [b"text/plain"]}, body
            return
        if not closed:
            self.defects.append("truncated multipart (no closing boundary)")
            rest = body[pos:]
            if rest.strip():
                yield self.entity(rest)

    def entity(self, raw: bytes) -> tuple[dict[str, list[bytes]], bytes]:
        if raw.startswith((b"\n", b"\r\n")):  # a part with no headers: text/plain by default
            return {}, raw.split(b"\n", 1)[1]
        headers, body, defects = split_headers(raw)
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
            try:
                text, links, images = html_to_text(text)
            except Exception:  # lxml and bs4 both failed: keep the text, not the tags
                self.defects.append("unreadable HTML: tags stripped")
                text, links, images = _WS.sub(" ", re.sub(r"<[^>]*>", " ", text)), 0, 0
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

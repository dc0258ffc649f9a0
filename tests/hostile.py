"""Hostile and broken mail: a seeded corpus, hypothesis strategies, and the benchmark section.

Issue 8 asks that no message, however malformed, crashes a run or takes unbounded time. This
module makes such messages:

- `corpus(seed, quick)` yields (name, raw bytes) for every kind of damage we know of (broken
  boundaries, multiparts nested 100 and 10,000 deep, invalid and lying charsets, NUL bytes,
  broken base64 and quoted-printable, 50 MB messages, 10,000 recipients, 1 MB header lines,
  pathological HTML) and for seeded random combinations of them. Same seed, same bytes.
- `messages()` is a hypothesis strategy drawing malformed messages from the same building
  blocks as the random combinations (`build_message`), so a failure shrinks to a small case.
- `hostile_section(seed, quick)` runs the corpus and deterministic random messages through
  `parse` and a trained model's `predict`, timing each, for `benchmarks/faults`.

Messages are made of parts that are repeated, not of random bytes drawn one by one, so even the
50 MB ones are built in milliseconds. Every message of the corpus but the header-less kinds
carries a unique Message-ID (the IMAP test counts messages by it).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import gc
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol, TypeVar

from triage.message import TEXT_CAP, Message, from_bytes, parse, to_bytes
from triage.model import KEEP, TriageModel

if TYPE_CHECKING:
    from faultlab import Section
    from hypothesis.strategies import DrawFn, SearchStrategy

T = TypeVar("T")

MB = 1024 * 1024
#: Parse or predict time per message above which the benchmark counts a failure. Generous:
#: the point is "bounded", and the machine is shared; the slowest message is printed anyway.
TIME_BOUND = 0.5
#: Kinds that have no headers at all (and so no Message-ID): not for the IMAP test.
HEADERLESS = frozenset(
    {"empty", "only-newlines", "random-binary-1mb", "nul-only-1mb", "mbox-from-line-1mb"}
)

# --- building blocks ---------------------------------------------------------------------------

CHARSETS: tuple[str, ...] = (
    "utf-8",
    "us-ascii",
    "iso-8859-1",
    "windows-1252",
    "utf-16",
    "utf-16le",
    "utf-32",
    "utf-7",
    "unicode_escape",
    "raw-unicode-escape",
    "hex",
    "rot13",
    "zlib",
    "base64",
    "idna",
    "punycode",
    "undefined",
    "x-made-up",
    "",
    '"utf-8',
    "utf-8\x00",
    "iso-2022-jp",
    "shift_jis",
    "big5",
    "koi8-r",
    "cp037",
    "mbcs",
    "../../etc/passwd",
    "utf-8'en'",
    "x" * 300,
)
ENCODINGS: tuple[str, ...] = (
    "",
    "7bit",
    "8bit",
    "binary",
    "base64",
    "BASE64",
    "quoted-printable",
    "x-uuencode",
    "x-unknown",
    "base64 base64",
    "quoted-printable; junk",
)
TEXT_PIECES: tuple[bytes, ...] = (
    b"Invoice 4711 for the support contract, payment net 30. ",
    b"Please find the renewal quote attached. ",
    b"\x00",
    b"\xff\xfe",
    b"\xe9t\xe9 caf\xe9 ",
    "€ naïve – “quoted” ".encode(),
    b"=\n",
    b"=ZZ",
    b"=",
    b"=?utf-8?B?",
    b"?=",
    b"\\ud800",
    b"\\N{",
    b"+2AA-",
    b"\r",
    b"\n",
    b"\r\n",
    b"--b\n",
    b"--b--\n",
    b"<a href=x>",
    b"https://example.com/x ",
    b"AAAA",
    b"====",
    b"*not base64*",
    b"\x1b$B",
)
HTML_PIECES: tuple[bytes, ...] = (
    b"<html>",
    b"<body>",
    b"<div>",
    b"</div>",
    b"<p>Offer for buyers</p>",
    b"<!--",
    b"-->",
    b"<script>var x = '</scr' + 'ipt>';",
    b"</script>",
    b"<style>p{}",
    b"&amp;",
    b"&#0;",
    b"&#xD800;",
    b"&#x110000;",
    b"&nosuchentity;",
    b"<a href='https://example.com/",
    b"<a ",
    b"<img src=x.png>",
    b"<![CDATA[",
    b"<?xml version='1.0' encoding='utf-16'?>",
    b"<table><tr><td>",
    b"</",
    b"<",
    b">",
    b'"',
    b"\x00",
    b"<meta charset='utf-16'>",
    b"<template>hidden</template>",
)
HEADER_NAMES: tuple[bytes, ...] = (
    b"From",
    b"To",
    b"Cc",
    b"Reply-To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"In-Reply-To",
    b"References",
    b"List-Id",
    b"List-Unsubscribe",
    b"Precedence",
    b"Content-Type",
    b"Content-Transfer-Encoding",
    b"Content-Disposition",
    b"X-Junk",
    b"",
    b"Bad Name",
    b"From\x00",
)
HEADER_VALUES: tuple[bytes, ...] = (
    b"Jane Roe <jane@acme.example>",
    b"buyer@example.com, ops@example.com",
    b"undisclosed-recipients:;",
    b"a@b, c@d, (((((comment",
    b'"unbalanced <quote@x.example',
    b"<<<<<>>>>>",
    b"=?utf-8?B?SsO8cmdlbg==?= <j@x.example>",
    b"=?x-bad?Q?=FF=?=",
    b"=?unicode_escape?Q?\\ud800?=",
    b"=?utf-7?Q?+2AA-?=",
    b"Mon, 99 Foo 99999 99:99:99 +9999",
    b"Mon, 3 Mar 2025 10:00:00 +0000",
    b"<id@host>",
    b"multipart/mixed; boundary=b",
    b'multipart/alternative; boundary="b"',
    b"text/html; charset=utf-16",
    b"text/plain; charset*0*=utf-8''%FF; charset*1=8",
    b"attachment; filename*0*=utf-8''%FF; filename*1=x",
    b"base64",
    b"\xe9t\xe9",
    b"\x00",
    b"",
)


class Chooser(Protocol):
    """Where `build_message` gets its choices: a seeded Random, or hypothesis's `draw`."""

    def pick(self, options: Sequence[T]) -> T: ...

    def number(self, low: int, high: int) -> int: ...


class RandomChooser:
    """Choices from a seeded `random.Random` (the corpus and the benchmark)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]

    def number(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)


class DrawChooser:
    """Choices drawn by hypothesis, so failures shrink."""

    def __init__(self, draw: DrawFn) -> None:
        self.draw = draw

    def pick(self, options: Sequence[T]) -> T:
        from hypothesis import strategies as st

        return self.draw(st.sampled_from(options))

    def number(self, low: int, high: int) -> int:
        from hypothesis import strategies as st

        return self.draw(st.integers(low, high))


def build_message(c: Chooser, scale: int = 1) -> bytes:
    """One malformed message: random headers, a random MIME tree, then random damage.

    `scale` multiplies how often pieces repeat (1 keeps messages to a few KB).
    """
    lines = [
        c.pick(HEADER_NAMES) + b": " + c.pick(HEADER_VALUES) * c.number(1, 3 * scale)
        for _ in range(c.number(0, 8))
    ]
    data = b"\n".join(lines) + b"\n" + _entity(c, 0, scale)
    return _damage(c, data)


def _entity(c: Chooser, depth: int, scale: int) -> bytes:
    kind = c.pick(("text", "html", "multipart", "message", "attachment", "raw"))
    if kind == "multipart" and depth < 6:
        boundary = c.pick((b"b", b"bb", b"", b"(.*)+", b"=_b", b"b" * 100, b"--"))
        sub = c.pick((b"mixed", b"alternative", b"related", b"report"))
        out = [b"Content-Type: multipart/" + sub + b'; boundary="' + boundary + b'"\n\n']
        out.append(c.pick((b"", b"preamble\n", b"--" + boundary + b"x\n")))
        for _ in range(c.number(0, 4)):
            out.append(b"--" + boundary + c.pick((b"\n", b"\r\n", b" \t\n", b"")))
            out.append(_entity(c, depth + 1, scale) + b"\n")
        out.append(c.pick((b"--" + boundary + b"--\n", b"", b"--" + boundary + b"-\n")))
        out.append(c.pick((b"", b"epilogue --" + boundary + b"--\n")))
        return b"".join(out)
    if kind == "message" and depth < 6:
        return b"Content-Type: message/rfc822\n\n" + build_message(c, scale)
    charset = c.pick(CHARSETS).encode("utf-8", "replace")
    cte = c.pick(ENCODINGS).encode()
    if kind == "html":
        head = b"Content-Type: text/html; charset=" + charset
        body = b"".join(
            c.pick(HTML_PIECES) * c.number(1, 4 * scale) for _ in range(c.number(0, 12))
        )
    elif kind == "attachment":
        head = b'Content-Type: application/pdf; name="x.pdf"\nContent-Disposition: attachment'
        body = b"JVBERi0xLjQK" * c.number(0, 50 * scale)
    elif kind == "raw":
        return b"".join(c.pick(TEXT_PIECES + HTML_PIECES) for _ in range(c.number(0, 20)))
    else:
        head = b"Content-Type: text/plain; charset=" + charset
        body = b"".join(
            c.pick(TEXT_PIECES) * c.number(1, 4 * scale) for _ in range(c.number(0, 12))
        )
    return head + b"\nContent-Transfer-Encoding: " + cte + b"\n\n" + _encode(cte, body, c)


def _encode(cte: bytes, body: bytes, c: Chooser) -> bytes:
    """The body in its declared transfer encoding, mostly (a lying encoding is damage too)."""
    if c.number(0, 3) == 0:
        return body
    if cte.lower().startswith(b"base64"):
        return base64.encodebytes(body)
    if cte.startswith(b"quoted-printable"):
        return binascii.b2a_qp(body)
    return body


def _damage(c: Chooser, data: bytes) -> bytes:
    """Truncate, splice in garbage, or change the line ends, some of the time."""
    for _ in range(c.number(0, 3)):
        what = c.pick(("cut", "splice", "crlf", "cr", "nul", "none"))
        at = len(data) * c.number(0, 100) // 100
        if what == "cut":
            data = data[:at]
        elif what == "splice":
            data = data[:at] + c.pick(TEXT_PIECES + HTML_PIECES + HEADER_VALUES) + data[at:]
        elif what == "crlf":
            data = data.replace(b"\n", b"\r\n")
        elif what == "cr":
            data = data.replace(b"\n", b"\r")
        elif what == "nul":
            data = data[:at] + b"\x00" * c.number(1, 64) + data[at:]
    return data


def messages(scale: int = 1) -> SearchStrategy[bytes]:
    """Hypothesis strategy: malformed messages from `build_message` (shrinkable)."""
    from hypothesis import strategies as st

    @st.composite
    def strategy(draw: DrawFn) -> bytes:
        return build_message(DrawChooser(draw), scale)

    return strategy()


# --- the corpus --------------------------------------------------------------------------------

_KINDS: dict[str, Callable[[random.Random, bool], bytes]] = {}


def _kind(name: str) -> Callable[[Callable[[random.Random, bool], bytes]], Callable[..., bytes]]:
    def register(fn: Callable[[random.Random, bool], bytes]) -> Callable[..., bytes]:
        _KINDS[name] = fn
        return fn

    return register


def _head(*extra: bytes, subject: bytes = b"Hostile mail") -> bytes:
    """Ordinary headers (the Message-ID is added by `corpus`), then `extra`, then a blank line."""
    lines = [
        b'From: "Hostile Sender" <sender@hostile.example>',
        b"To: buyer@example.com",
        b"Subject: " + subject,
        b"Date: Mon, 3 Mar 2025 10:00:00 +0000",
        b"MIME-Version: 1.0",
        *extra,
    ]
    return b"\n".join(lines) + b"\n\n"


def _top(entity: bytes, *extra: bytes) -> bytes:
    """A message whose top-level entity is `entity` (its headers join the message's)."""
    return _head(*extra)[:-1] + entity


def _words(rng: random.Random, n: int) -> bytes:
    vocab = [b"invoice", b"renewal", b"contract", b"support", b"price", b"order", b"server"]
    return b" ".join(rng.choice(vocab) for _ in range(n))


def _big(quick: bool) -> int:
    return 5 * MB if quick else 50 * MB


def _multipart(boundary: bytes, parts: Sequence[bytes], sub: bytes = b"mixed") -> bytes:
    head = b"Content-Type: multipart/" + sub + b'; boundary="' + boundary + b'"\n\n'
    body = b"".join(b"--" + boundary + b"\n" + p + b"\n" for p in parts)
    return head + body + b"--" + boundary + b"--\n"


_PLAIN = b"Content-Type: text/plain; charset=utf-8\n\nThe readable part.\n"


# broken boundaries


@_kind("boundary-missing")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head(b"Content-Type: multipart/mixed; boundary=nowhere") + _words(rng, 200)


@_kind("boundary-no-parameter")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head(b"Content-Type: multipart/mixed") + b"--b\n" + _PLAIN + b"--b--\n"


@_kind("boundary-empty")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head(b'Content-Type: multipart/mixed; boundary=""') + b"--\n" + _PLAIN + b"----\n"


@_kind("boundary-regex-characters")
def _(rng: random.Random, quick: bool) -> bytes:
    b = rb"(.*)+[a-z]{1,}$^|?"
    return _top(_multipart(b, [_PLAIN, _PLAIN]))


@_kind("boundary-70kb")
def _(rng: random.Random, quick: bool) -> bytes:
    return _top(_multipart(b"b" * 70_000, [_PLAIN] * 3))


@_kind("boundary-never-closed")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head(b"Content-Type: multipart/mixed; boundary=b") + (b"--b\n" + _PLAIN) * 3


@_kind("boundary-prefix-of-inner")
def _(rng: random.Random, quick: bool) -> bytes:
    inner = _multipart(b"bb", [_PLAIN, _PLAIN])
    return _top(_multipart(b"b", [inner, _PLAIN]))


@_kind("boundary-inside-lines")
def _(rng: random.Random, quick: bool) -> bytes:
    text = b"text --b more --b-- and --b\tx\n" * 20_000
    return _head(b"Content-Type: multipart/mixed; boundary=b") + text


@_kind("boundary-100k-parts")
def _(rng: random.Random, quick: bool) -> bytes:
    return _top(_multipart(b"b", [b"\npart"] * 100_000))


@_kind("boundary-200k-delimiters")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head(b"Content-Type: multipart/mixed; boundary=b") + b"--b\n" * 200_000


@_kind("boundary-400k-lookalike-lines")
def _(rng: random.Random, quick: bool) -> bytes:
    return _top(_multipart(b"b", [_PLAIN + b"--bx\n" * 400_000, _PLAIN]))


@_kind("boundary-1mb-trailing-space")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head(b"Content-Type: multipart/mixed; boundary=b") + b"--b" + b" " * MB


@_kind("boundary-crlf-lf-mixed")
def _(rng: random.Random, quick: bool) -> bytes:
    return _top(_multipart(b"b", [_PLAIN, _PLAIN])).replace(b"--b\n", b"--b\r\n", 1)


@_kind("boundary-in-base64-multipart")
def _(rng: random.Random, quick: bool) -> bytes:
    inner = base64.encodebytes(_multipart(b"b", [_PLAIN]))
    return (
        _head(b"Content-Type: multipart/mixed; boundary=b", b"Content-Transfer-Encoding: base64")
        + inner
    )


# nesting


def _nested(depth: int, same: bool, sub: bytes = b"mixed") -> bytes:
    data = _PLAIN
    for i in range(depth):
        b = b"b" if same else b"b%d" % i
        data = _multipart(b, [data], sub)
    return data


@_kind("nested-100")
def _(rng: random.Random, quick: bool) -> bytes:
    return _top(_nested(100, same=False))


@_kind("nested-100-same-boundary")
def _(rng: random.Random, quick: bool) -> bytes:
    return _top(_nested(100, same=True))


@_kind("nested-100-alternative")
def _(rng: random.Random, quick: bool) -> bytes:
    return _top(_nested(100, same=False, sub=b"alternative"))


@_kind("nested-10000")
def _(rng: random.Random, quick: bool) -> bytes:
    # Built as one prefix and one suffix: 10,000 levels with their own boundaries.
    opens = b"".join(
        b'Content-Type: multipart/mixed; boundary="n%d"\n\n--n%d\n' % (i, i) for i in range(10_000)
    )
    closes = b"".join(b"\n--n%d--\n" % i for i in reversed(range(10_000)))
    return _top(opens + _PLAIN + closes)


@_kind("nested-100-message-rfc822")
def _(rng: random.Random, quick: bool) -> bytes:
    data = _PLAIN
    for _ in range(100):
        data = b"Content-Type: message/rfc822\n\n" + _top(data)
    return _top(data)


@_kind("nested-100-unclosed")
def _(rng: random.Random, quick: bool) -> bytes:
    opens = b"".join(
        b"Content-Type: multipart/mixed; boundary=u%d\n\n--u%d\n" % (i, i) for i in range(100)
    )
    return _top(opens + _PLAIN)


# charsets


def _text_part(charset: bytes, body: bytes, cte: bytes = b"8bit") -> bytes:
    return (
        b"Content-Type: text/plain; charset=" + charset + b"\n"
        b"Content-Transfer-Encoding: " + cte + b"\n\n" + body
    )


_CHARSET_BODIES = {
    "unknown": (b"x-made-up-charset", "Résumé prêt".encode("latin-1")),
    "lying-utf-8": (b"utf-8", "Prix: 100€ – café".encode("cp1252")),
    "lying-ascii": (b"us-ascii", "naïve café €".encode()),
    "lying-utf-16": (b"utf-16", b"plain ascii pretending to be utf-16 \xe9"),
    "utf-16-odd-length": (b"utf-16le", "abc".encode("utf-16le") + b"\xd8"),
    "utf-32-invalid": (b"utf-32", b"\xff\xff\xff\x7f" * 1000),
    "utf-7-lone-surrogates": (b"utf-7", b"+2AA- +3AA- caf\xe9 " * 1000),
    "unicode-escape-surrogates": (b"unicode_escape", b"\\ud800 \\udfff \xe9 \\N{BULLET} " * 1000),
    "raw-unicode-escape": (b"raw-unicode-escape", b"\\ud800\\U0010ffff\xe9 " * 1000),
    "hex": (b"hex", b"caf\xe9 and plain words"),
    "rot13": (b"rot13", b"caf\xe9 rot"),
    "zlib": (b"zlib", b"x\x9c\xcbH\xcd\xc9\xc9\x07\x00\x06,\x02\x15\xe9"),
    "idna": (b"idna", b"xn--caf-dma.\xe9" * 1000),
    "punycode": (b"punycode", b"caf-dma\xe9-" * 1000),
    "undefined": (b"undefined", b"\xe9"),
    "nul-in-name": (b'"utf-8\x00"', b"\xe9t\xe9"),
    "path-name": (b"../../../../etc/passwd", b"\xe9t\xe9"),
    "1mb-name": (b"x" * MB, b"\xe9t\xe9"),
    "iso-2022-jp-broken": (b"iso-2022-jp", b"\x1b$B\xff\xfe\x1b(B" * 1000),
    "shift-jis-garbage": (b"shift_jis", bytes(range(128, 256)) * 100),
    "ebcdic": (b"cp037", "EBCDIC text".encode("cp037")),
}


def _charset_kind(charset: bytes, body: bytes) -> Callable[[random.Random, bool], bytes]:
    def make(rng: random.Random, quick: bool) -> bytes:
        return _top(_text_part(charset, body))

    return make


for _name, (_cs, _body) in _CHARSET_BODIES.items():
    _KINDS["charset-" + _name] = _charset_kind(_cs, _body)


@_kind("charset-1000-distinct-encoded-words")
def _(rng: random.Random, quick: bool) -> bytes:
    words = b" ".join(b"=?x-cs-%d?B?Y2Fmw6k=?=" % rng.randrange(10**9) for _ in range(1000))
    return _head(subject=words) + b"body\n"


@_kind("charset-encoded-words-surrogates")
def _(rng: random.Random, quick: bool) -> bytes:
    subject = b"=?unicode_escape?Q?=5Cud800?= =?utf-7?Q?+2AA-?= =?utf-7?B?KzJBQS0=?="
    head = _head(subject=subject).replace(b'"Hostile Sender"', b"=?unicode_escape?Q?=5Cud800?=")
    return head + b"body\n"


@_kind("charset-8bit-headers-surrogate-hint")
def _(rng: random.Random, quick: bool) -> bytes:
    return (
        b'From: "\\ud800 \xe9" <s\\udc00@hostile.example>\nSubject: \\ud800\xe9\n'
        b"Content-Type: text/plain; charset=unicode_escape\n\n\\ud800\xe9\n"
    )


@_kind("charset-rfc2231-lies")
def _(rng: random.Random, quick: bool) -> bytes:
    return (
        _head(
            b"Content-Type: text/plain; charset*0*=utf-7''%2B2AA-; charset*1=x",
            b"Content-Disposition: inline; filename*0*=unicode_escape''%5Cud800; filename*1*=%FF",
        )
        + b"body \xe9\n"
    )


# NUL bytes


@_kind("nul-in-headers")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head(b"X-\x00: \x00\x00", subject=b"nul\x00subject") + b"body\n"


@_kind("nul-in-body")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head() + (b"invoice\x00" * 10_000)


@_kind("nul-in-html")
def _(rng: random.Random, quick: bool) -> bytes:
    html = b"<html><body>" + b"<p>offer\x00</p><a href='x\x00'>go</a>" * 5_000 + b"</body></html>"
    return _head(b"Content-Type: text/html; charset=utf-8") + html


@_kind("nul-after-every-byte")
def _(rng: random.Random, quick: bool) -> bytes:
    raw = _head(b"Content-Type: text/html") + b"<p>offer</p>" * 1_000
    return b"".join(bytes((ch, 0)) for ch in raw[:200]) + raw[200:].replace(b">", b">\x00")


@_kind("nul-only-1mb")
def _(rng: random.Random, quick: bool) -> bytes:
    return b"\x00" * MB


# transfer encodings


@_kind("base64-garbage")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head(b"Content-Transfer-Encoding: base64") + b"SGVsbG8gd29ybGQ*not*base64!!" * 1000


@_kind("base64-truncated-quantum")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head(b"Content-Transfer-Encoding: base64") + b"SGVsbG8gd29ybGQ"


@_kind("base64-only-padding")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head(b"Content-Transfer-Encoding: base64") + b"====" * 100_000


@_kind("base64-1mb-line")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head(b"Content-Transfer-Encoding: base64") + b"QUJD" * (MB // 4)


@_kind("base64-html-with-garbage")
def _(rng: random.Random, quick: bool) -> bytes:
    html = base64.b64encode(b"<p>hello</p>" * 1000)
    return (
        _head(b"Content-Type: text/html", b"Content-Transfer-Encoding: base64")
        + html
        + b"!@#"
        + html
    )


@_kind("qp-broken-escapes")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head(b"Content-Transfer-Encoding: quoted-printable") + b"caf=E9 =ZZ =\r =X=" * 10_000


@_kind("qp-500k-soft-breaks")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head(b"Content-Transfer-Encoding: quoted-printable") + b"=\n" * 500_000 + b"end"


@_kind("qp-lone-equals-1mb")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head(b"Content-Transfer-Encoding: quoted-printable") + b"=" * MB


@_kind("transfer-encoding-unknown-1kb-name")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head(b"Content-Transfer-Encoding: " + b"x" * 1024) + b"body\n"


# size


@_kind("huge-plain-text")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head() + (_words(rng, 100) + b"\n") * (_big(quick) // 700)


@_kind("huge-attachment")
def _(rng: random.Random, quick: bool) -> bytes:
    attachment = (
        b'Content-Type: application/pdf; name="big.pdf"\n'
        b"Content-Transfer-Encoding: base64\nContent-Disposition: attachment\n\n"
        + b"JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFIvRmlsdGVyIC9GbGF0ZURlY29kZT4+\n"
        * (_big(quick) // 81)
    )
    return _top(_multipart(b"b", [_PLAIN, attachment]))


@_kind("huge-html")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head(b"Content-Type: text/html") + b"<p>offer <a href=x>go</a></p>\n" * (
        _big(quick) // 31
    )


@_kind("huge-one-line-no-headers-end")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head().rstrip(b"\n") + b"\nX-Junk: " + b"a" * _big(quick)


@_kind("huge-many-small-parts")
def _(rng: random.Random, quick: bool) -> bytes:
    n = _big(quick) // 60
    return _top(_multipart(b"b", [b"Content-Type: text/plain\n\npart"] * n))


# recipients


def _addresses(n: int) -> list[bytes]:
    return [b"Person %d <person%d@vendor%d.example>" % (i, i, i % 97) for i in range(n)]


@_kind("recipients-10000-to")
def _(rng: random.Random, quick: bool) -> bytes:
    head = _head().replace(b"To: buyer@example.com", b"To: " + b", ".join(_addresses(10_000)))
    return head + b"body\n"


@_kind("recipients-10000-folded")
def _(rng: random.Random, quick: bool) -> bytes:
    to = b"To: " + b",\n\t".join(_addresses(10_000))
    return _head().replace(b"To: buyer@example.com", to) + b"body\n"


@_kind("recipients-10000-cc-and-1mb-header")
def _(rng: random.Random, quick: bool) -> bytes:
    cc = b"Cc: " + b", ".join(_addresses(10_000))
    return _head(cc, b"X-Junk: " + b"j" * MB) + b"Hello, please see the offer below.\n"


@_kind("recipients-hostile-syntax")
def _(rng: random.Random, quick: bool) -> bytes:
    junk = b'"\\' * 20_000 + b"(" * 20_000 + b"<" * 20_000 + b"@" * 20_000 + b",:;" * 10_000
    return _head(b"Cc: " + junk, b"Reply-To: " + junk) + b"body\n"


@_kind("recipients-groups-nested")
def _(rng: random.Random, quick: bool) -> bytes:
    group = b"g: " + b"h: " * 5000 + b"a@b.example;" * 5000
    return _head(b"Cc: " + group) + b"body\n"


# header lines


@_kind("header-1mb-subject")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head(subject=_words(rng, 150_000)) + b"body\n"


@_kind("header-1mb-subject-encoded-words")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head(subject=b"=?utf-8?B?SsO8cmdlbg==?= " * 40_000) + b"body\n"


@_kind("header-1mb-from")
def _(rng: random.Random, quick: bool) -> bytes:
    head = _head().replace(b"From: ", b"From: " + b"x" * MB + b" ")
    return head + b"body\n"


@_kind("header-1mb-content-type")
def _(rng: random.Random, quick: bool) -> bytes:
    params = b"; ".join(b'p%d="a;b"' % i for i in range(100_000))
    return _head(b"Content-Type: text/plain; " + params) + b"body\n"


@_kind("header-1mb-rfc2231-continuations")
def _(rng: random.Random, quick: bool) -> bytes:
    params = b"; ".join(b"filename*%d*=%%FF" % i for i in range(100_000))
    return _head(b"Content-Disposition: attachment; " + params) + b"body\n"


@_kind("header-1mb-message-id-and-references")
def _(rng: random.Random, quick: bool) -> bytes:
    refs = b" ".join(b"<r%d@x.example>" % i for i in range(70_000))
    return _head(b"References: " + refs, b"In-Reply-To: " + b"<" * MB) + b"body\n"


@_kind("header-1mb-date")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head().replace(b"Date: Mon,", b"Date: " + b"Mon, " * 200_000) + b"body\n"


@_kind("header-100k-fields")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head(*(b"X-H%d: v" % i for i in range(100_000))) + b"body\n"


@_kind("header-300k-continuation-lines")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head(b"X-Folded: start" + b"\n x" * 300_000) + b"body\n"


@_kind("header-1mb-no-colon")
def _(rng: random.Random, quick: bool) -> bytes:
    return b"Subject: no colon next\n" + b"n" * MB + b"\n\nbody\n"


@_kind("header-1mb-name")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head(b"X" * MB + b": v") + b"body\n"


@_kind("header-no-blank-line-1mb")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head().rstrip(b"\n") + b"\n" + b"X-A: b\n" * (MB // 7)


# HTML


def _html(extra: bytes = b"", body: bytes = b"") -> bytes:
    return _head(b"Content-Type: text/html; charset=utf-8", extra) + body


@_kind("html-100k-nested-divs")
def _(rng: random.Random, quick: bool) -> bytes:
    return _html(body=b"<html><body>" + b"<div>" * 100_000 + b"deep" + b"</div>" * 100_000)


@_kind("html-100k-nested-unclosed")
def _(rng: random.Random, quick: bool) -> bytes:
    return _html(body=b"<table><tr><td><b><i><font>" * 20_000 + b"text")


@_kind("html-100k-nested-anchors")
def _(rng: random.Random, quick: bool) -> bytes:
    return _html(body=b"<a href=x>" * 100_000)


@_kind("html-1mb-attribute")
def _(rng: random.Random, quick: bool) -> bytes:
    return _html(body=b'<p title="' + b"v" * MB + b'">text</p><a href="' + b"h" * MB + b'">x</a>')


@_kind("html-unclosed-attribute")
def _(rng: random.Random, quick: bool) -> bytes:
    return _html(body=b'<p>start<a href="' + b"x >< " * 200_000)


@_kind("html-unclosed-comment")
def _(rng: random.Random, quick: bool) -> bytes:
    return _html(body=b"<p>visible</p><!--" + b"hidden -- > - - " * 60_000)


@_kind("html-million-entities")
def _(rng: random.Random, quick: bool) -> bytes:
    return _html(body=b"<p>" + b"&amp;&lt;&#8364;&#x20AC;&nbsp;" * 1_000_000 + b"</p>")


@_kind("html-invalid-entities")
def _(rng: random.Random, quick: bool) -> bytes:
    return _html(body=b"<p>" + b"&#0;&#xD800;&#x110000;&#99999999999;&bogus;&" * 50_000 + b"</p>")


@_kind("html-100k-anchor-starts-without-close")
def _(rng: random.Random, quick: bool) -> bytes:
    alt = _multipart(
        b"alt",
        [_PLAIN, b"Content-Type: text/html\n\n" + b"<a " * 100_000 + b"x"],
        b"alternative",
    )
    return _top(alt)


@_kind("html-100k-links-and-images")
def _(rng: random.Random, quick: bool) -> bytes:
    return _html(body=b'<a href="https://x.example/">l</a><img src="i.png">' * 100_000)


@_kind("html-unclosed-script")
def _(rng: random.Random, quick: bool) -> bytes:
    return _html(body=b"<p>before</p><script>" + b"var a = '<p>';" * 70_000)


@_kind("html-cdata-and-pis")
def _(rng: random.Random, quick: bool) -> bytes:
    return _html(body=b"<![CDATA[" * 50_000 + b"<?php x ?>" * 50_000 + b"<p>t</p>")


@_kind("html-xml-declaration-unclosed")
def _(rng: random.Random, quick: bool) -> bytes:
    return _html(body=b" " * 100_000 + b"<?xml version='1.0' encoding='utf-16'" + b" a" * 300_000)


@_kind("html-1m-br")
def _(rng: random.Random, quick: bool) -> bytes:
    return _html(body=b"<br>" * 1_000_000)


@_kind("html-only-whitespace-and-comments")
def _(rng: random.Random, quick: bool) -> bytes:
    return _html(body=b"  \n<!-- x -->" * 50_000)


@_kind("html-control-characters")
def _(rng: random.Random, quick: bool) -> bytes:
    return _html(body=b"<p>" + bytes(range(32)) * 20_000 + b"</p>")


@_kind("html-lying-meta-charset")
def _(rng: random.Random, quick: bool) -> bytes:
    body = b"<html><head><meta charset='utf-16'></head><body>caf\xe9 " * 1000
    return _head(b"Content-Type: text/html; charset=utf-16") + body


@_kind("html-style-1mb")
def _(rng: random.Random, quick: bool) -> bytes:
    return _html(body=b"<style>" + b"p{color:red}" * 90_000 + b"</style><p>visible</p>")


@_kind("html-in-alternative-100k-tags")
def _(rng: random.Random, quick: bool) -> bytes:
    html = b"Content-Type: text/html\n\n" + b"<div><span>" * 100_000
    return _top(_multipart(b"alt", [html, html], b"alternative"))


# odd shapes


@_kind("empty")
def _(rng: random.Random, quick: bool) -> bytes:
    return b""


@_kind("only-newlines")
def _(rng: random.Random, quick: bool) -> bytes:
    return b"\r\n" * 500_000


@_kind("cr-only-line-ends")
def _(rng: random.Random, quick: bool) -> bytes:
    return _top(_multipart(b"b", [_PLAIN, _PLAIN])).replace(b"\n", b"\r")


@_kind("random-binary-1mb")
def _(rng: random.Random, quick: bool) -> bytes:
    return rng.randbytes(MB)


@_kind("mbox-from-line-1mb")
def _(rng: random.Random, quick: bool) -> bytes:
    return b"From " + b"x" * MB


@_kind("headers-only")
def _(rng: random.Random, quick: bool) -> bytes:
    return _head().rstrip(b"\n")


@_kind("attachment-name-1mb")
def _(rng: random.Random, quick: bool) -> bytes:
    part = b'Content-Type: application/pdf; name="' + b"n" * MB + b'.pdf"\n\nx'
    return _top(_multipart(b"b", [_PLAIN, part]))


@_kind("1000-attached-images")
def _(rng: random.Random, quick: bool) -> bytes:
    return _top(_multipart(b"b", [_PLAIN] + [b"Content-Type: image/png\n\nx"] * 1000))


def kinds() -> list[str]:
    """The names of the fixed kinds, in corpus order (random combinations are not listed)."""
    return list(_KINDS)


def corpus(
    seed: int = 0, quick: bool = False, combinations: int | None = None
) -> Iterator[tuple[str, bytes]]:
    """(name, raw message) for every kind, then seeded random combinations of the damage.

    `quick` makes the 50 MB messages 5 MB and draws fewer combinations. Every message with
    headers gets a unique Message-ID, first in its header.
    """
    rng = random.Random(seed)
    for name in _KINDS:
        yield name, make(name, seed, quick)
    n = combinations if combinations is not None else (40 if quick else 200)
    for i in range(n):
        name = f"combination-{i}"
        data = build_message(RandomChooser(random.Random(rng.random())), scale=50)
        yield name, _with_id(name, seed, data)


def make(name: str, seed: int = 0, quick: bool = False) -> bytes:
    """The corpus message of kind `name` (see `kinds`)."""
    data = _KINDS[name](random.Random(f"{seed}/{name}"), quick)
    return data if name in HEADERLESS else _with_id(name, seed, data)


def _with_id(name: str, seed: int, data: bytes) -> bytes:
    return b"Message-ID: <%s.%d@hostile.example>\n" % (name.encode(), seed) + data


# --- a model to predict with -------------------------------------------------------------------


def training_set(n: int = 20) -> tuple[list[Message], list[str]]:
    """A tiny labelled mailbox: two partners, the generic bucket and keep, `n` messages each."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    folders = {
        "Vendors/Acme": ("jane@acme.example", "Invoice {i} for support", "Invoice for support."),
        "Vendors/Globex": ("hank@globex.example", "Shipment {i} dispatched", "Tracking number."),
        "Vendors/Generic": ("news@promo.example", "Offer {i}: 50% off", "<p>Click below</p>"),
        KEEP: ("anna@example.com", "Lunch {i}?", "Shall we meet for lunch?"),
    }
    messages: list[Message] = []
    labels: list[str] = []
    for i in range(n):
        for label, (sender, subject, body) in folders.items():
            when = start + timedelta(hours=len(messages))
            raw = (
                f"From: {sender}\nTo: buyer@example.com\nSubject: {subject.format(i=i)}\n"
                f"Date: {when.strftime('%a, %d %b %Y %H:%M:%S +0000')}\n"
                f"Message-ID: <t{len(messages)}@x.example>\n\n{body}\n"
            )
            messages.append(parse(raw.encode(), f"{label}/{i}"))
            labels.append(label)
    return messages, labels


def trained_model() -> TriageModel:
    messages, labels = training_set()
    return TriageModel.train(messages, labels, generic="Vendors/Generic")


# --- the benchmark section ---------------------------------------------------------------------


@dataclass
class Outcome:
    """What happened to one hostile input."""

    name: str
    parse_seconds: float
    predict_seconds: float
    problem: str  # "" when all went well


def check(name: str, data: bytes, model: TriageModel) -> Outcome:
    """Parse and predict one message; a problem is an exception, an insane result, or a time
    over `TIME_BOUND`."""
    problem = ""
    parse_s = predict_s = 0.0
    # A collection of the whole heap (40 ms once scikit-learn is loaded) can fall in any
    # message's time; it is not that message's doing, so it waits until the timing is done.
    gc.disable()
    try:
        t0 = time.perf_counter()
        message = parse(data, name)
        parse_s = time.perf_counter() - t0
        problem = sanity(message, data)
        t0 = time.perf_counter()
        model.predict([message])
        predict_s = time.perf_counter() - t0
        from_bytes(to_bytes(message))  # what the engine stores must round-trip
    except Exception as exc:  # the point is to count every failure, whatever it is
        problem = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        gc.enable()
    if not problem and max(parse_s, predict_s) > TIME_BOUND:
        problem = f"took {1000 * max(parse_s, predict_s):.0f} ms"
    return Outcome(name, parse_s, predict_s, problem)


def sanity(m: Message, data: bytes) -> str:
    """What is wrong with a parsed message; the empty string if it looks sane."""
    if not isinstance(m, Message):
        return f"parse returned {type(m).__name__}"
    if m.size != len(data):
        return f"size {m.size} != {len(data)}"
    if len(m.text) > TEXT_CAP:
        return f"text of {len(m.text)} characters"
    if any(d.startswith("unreadable message") for d in m.defects):
        return "parse hit its catch-all: " + ", ".join(m.defects)
    strings = [m.message_id, m.sender, m.sender_name, m.subject, m.text, *m.to, *m.cc, *m.defects]
    for s in strings:
        if not isinstance(s, str):
            return f"a field is {type(s).__name__}"
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            return "a field holds lone surrogates (SQLite and JSON refuse them)"
    return ""


def trials(seed: int = 0, quick: bool = False, random_messages: int | None = None) -> list[Outcome]:
    """The corpus, then `random_messages` (default 300 with `quick`, else 3,000) random
    malformed messages drawn from `seed`, each through parse and a trained model."""
    model = trained_model()
    outcomes = [check(name, data, model) for name, data in corpus(seed, quick)]
    rng = random.Random(f"random/{seed}")
    n = random_messages if random_messages is not None else (300 if quick else 3000)
    for i in range(n):
        data = build_message(RandomChooser(random.Random(rng.random())))
        outcomes.append(check(f"random-{i}", data, model))
    return outcomes


def hostile_section(seed: int = 0, quick: bool = False) -> tuple[list[str], int]:
    """Run `trials`; returns (printable lines, number of failures)."""
    outcomes = trials(seed, quick)
    failures = [o for o in outcomes if o.problem]
    slow_parse = max(outcomes, key=lambda o: o.parse_seconds)
    slow_predict = max(outcomes, key=lambda o: o.predict_seconds)
    lines = [
        f"hostile inputs tried: {len(outcomes)}, failures: {len(failures)}, "
        f"slowest parse: {1000 * slow_parse.parse_seconds:.1f} ms ({slow_parse.name}), "
        f"slowest predict: {1000 * slow_predict.predict_seconds:.1f} ms ({slow_predict.name})"
    ]
    lines.extend(f"  failed: {o.name}: {o.problem}" for o in failures[:20])
    return lines, len(failures)


# The hook benchmarks/faults leaves for this part:
#     PARTS.append(Part("hostile input", hostile.add_options, hostile.section))


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hostile input")
    group.add_argument(
        "--hostile-random",
        type=int,
        help="random malformed messages to try after the corpus (default 3000, --quick 300)",
    )


def section(args: argparse.Namespace) -> Section:
    """`trials` with the benchmark's --seed, --quick and --hostile-random, as a Section."""
    from faultlab import Section

    outcomes = trials(args.seed, args.quick, args.hostile_random)
    failures = [o for o in outcomes if o.problem]
    slow_parse = max(outcomes, key=lambda o: o.parse_seconds)
    slow_predict = max(outcomes, key=lambda o: o.predict_seconds)
    rows = [
        ("inputs tried (corpus + random)", f"{len(outcomes):,}"),
        ("failures", str(len(failures))),
        (f"slowest parse ({slow_parse.name})", f"{1000 * slow_parse.parse_seconds:.1f} ms"),
        (
            f"slowest predict ({slow_predict.name})",
            f"{1000 * slow_predict.predict_seconds:.1f} ms",
        ),
        ("time bound per message", f"{1000 * TIME_BOUND:.0f} ms"),
    ]
    rows.extend((f"failed {o.name}: {o.problem[:60]}", "1") for o in failures[:20])
    return Section("hostile input (parse + predict, per message)", rows, len(failures))


if __name__ == "__main__":  # a quick look without benchmarks/faults: python tests/hostile.py
    import sys

    out, failed = hostile_section(quick="--quick" in sys.argv)
    print("\n".join(out))
    sys.exit(1 if failed else 0)

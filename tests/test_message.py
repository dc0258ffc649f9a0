"""parse(bytes) -> Message on real-looking mail, broken mail and arbitrary bytes."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from email.utils import getaddresses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triage.message import (
    TEXT_CAP,
    Attachment,
    Message,
    _simple_addresses,
    normalise_subject,
    parse,
)

FIXTURES = Path(__file__).parent / "fixtures" / "mail"


def load(name: str) -> Message:
    return parse((FIXTURES / name).read_bytes(), key=name)


def test_html_only_drops_scripts_styles_and_comments() -> None:
    m = load("html_only.eml")
    assert m.html_only
    assert "servers are 40% off" in m.text
    assert "SECRET_TRACKER" not in m.text
    assert "display: none" not in m.text
    assert "comment nobody reads" not in m.text
    assert "<p>" not in m.text
    assert m.link_count == 2  # <a name=...> is not a link
    assert m.image_count == 2
    assert m.list_unsubscribe
    assert m.list_id == "ACME deals <deals.acme-deals.com>"
    assert m.precedence == "bulk"
    assert m.sender == "news@mail.acme-deals.com"
    assert m.sender_domain == "mail.acme-deals.com"
    assert m.sender_name == "ACME Deals"
    assert m.date == datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
    assert m.defects == ()


def test_multipart_alternative_prefers_plain_text_and_counts_html_links() -> None:
    m = load("alternative.eml")
    assert not m.html_only
    # quoted-printable, soft line break, and Latin-1 declared but Windows-1252 used (0x80 = €)
    assert "Café au lait costs €10." in m.text
    assert "<b>" not in m.text and "invoice</b>" not in m.text
    assert m.link_count == 1 and m.image_count == 1  # from the HTML alternative
    assert m.to == ("buyer@example.com",)
    assert m.cc == ("ops@example.com", "john.smith@example.com")
    assert m.subject == "Re: Invoice 2025-031 for support renewal"
    assert m.message_id == "<abc123@partner.example>"
    assert m.in_reply_to == "<orig-1@example.com>"
    assert m.references == ("<orig-0@example.com>", "<orig-1@example.com>")
    assert m.date == datetime(2025, 3, 5, 14, 30, tzinfo=UTC)
    assert "epilogue" not in m.text
    assert m.defects == ()


def test_wrong_declared_charset_is_decoded_and_recorded() -> None:
    m = load("wrong_charset.eml")
    assert "100€ – naïve café" in m.text
    assert any("declared us-ascii" in d for d in m.defects)


def test_invalid_utf8_falls_back() -> None:
    m = load("bad_utf8.eml")
    assert "café prêt" in m.text
    assert any("invalid in declared charset utf-8" in d for d in m.defects)


@pytest.mark.parametrize(
    ("name", "text", "defect"),
    [
        ("unknown_charset.eml", "Résumé attached.", "unknown charset 'x-made-up-charset'"),
        ("not_text_codec.eml", "plain words and café", "'hex' is not a text encoding"),
    ],
)
def test_unknown_and_non_text_charsets(name: str, text: str, defect: str) -> None:
    m = load(name)
    assert text in m.text
    assert any(defect in d for d in m.defects), m.defects


def test_rfc2047_headers() -> None:
    m = load("rfc2047.eml")
    # adjacent encoded words join without the folding whitespace; mixed charsets and B/Q
    assert m.subject == "Rechnung für März (Kunde Müller)"
    assert m.sender_name == "Jürgen Müller"
    assert m.sender == "jm@lieferant.example"
    assert m.to == ("bjorn@example.com",)
    assert m.defects == ()


def test_8bit_headers_use_the_body_charset() -> None:
    m = load("eight_bit_headers.eml")
    assert m.subject == "Facture récapitulative été"
    assert m.sender_name == "André Dupont"
    assert any("8-bit subject header" in d for d in m.defects)


def test_8bit_header_without_hint_is_windows_1252() -> None:
    m = parse(b"Subject: caf\xe9\nFrom: a@b.example\n\nx")
    assert m.subject == "café"
    assert m.defects == ("8-bit subject header: decoded as windows-1252",)


def test_broken_boundary_reads_body_as_text() -> None:
    m = load("broken_boundary.eml")
    assert "body text that is still readable" in m.text
    assert any("boundary not found" in d for d in m.defects)


def test_base64_garbage_keeps_the_readable_start_and_other_parts() -> None:
    m = load("base64_garbage.eml")
    assert m.text.startswith("Hello world")
    assert "Second part is fine." in m.text
    assert "not*base64" not in m.text
    assert any("damaged base64" in d for d in m.defects)


def test_truncated_multipart_keeps_what_arrived() -> None:
    m = load("truncated.eml")
    assert m.text == "The first part survived."
    assert m.attachments == (Attachment("contract.pdf", "application/pdf", 12),)
    assert "truncated multipart (no closing boundary)" in m.defects


def test_message_cut_in_the_headers() -> None:
    data = (FIXTURES / "alternative.eml").read_bytes()[:150]
    m = parse(data)
    assert m.sender == "jane@partner.example"
    assert m.text == ""


def test_attachments_recorded_not_read() -> None:
    m = load("attachments.eml")
    assert "Please find the invoice attached." in m.text
    assert "Inner forwarded text." in m.text  # an attached message's text is read
    assert "%PDF" not in m.text and "sku,qty" not in m.text
    names = [(a.filename, a.content_type) for a in m.attachments]
    assert names == [
        ("", "image/png"),
        ("Rechnung März.pdf", "application/pdf"),  # RFC 2231 filename*=utf-8''...
        ("lines.csv", "text/csv"),
    ]
    pdf = m.attachments[1]
    assert abs(pdf.size - 3009) <= 3
    assert m.image_count == 1
    assert m.message_id == "<order-4711@partner.example>"


def test_mbox_from_line_and_list_headers() -> None:
    m = load("mbox_from_line.eml")
    assert m.sender == "someone@example.com"
    assert m.precedence == "list"
    assert m.list_id == "<list.lists.example>"
    assert m.text == "hello list\n"
    assert m.date == datetime(2002, 8, 23, 15, 10, 22, tzinfo=UTC)


def test_missing_header_body_separator() -> None:
    m = load("no_separator.eml")
    assert m.subject == "no blank line"
    assert m.text.startswith("This line is body text")
    assert "missing blank line between headers and body" in m.defects


def test_huge_parts_are_capped() -> None:
    body = ("word " * 200_000).encode()
    m = parse(b"From: a@b.example\nSubject: big\n\n" + body)
    assert len(m.text) == TEXT_CAP
    assert m.size > 1_000_000
    assert any("cut" in d for d in m.defects)


def test_many_parts_are_capped() -> None:
    parts = b"".join(b"--b\nContent-Type: text/plain\n\npart %d\n" % i for i in range(1000))
    m = parse(b"Content-Type: multipart/mixed; boundary=b\n\n" + parts + b"--b--\n")
    assert m.text.startswith("part 0")
    assert any("MIME parts" in d for d in m.defects)


def test_deep_nesting_is_capped() -> None:
    data = b"Content-Type: text/plain\n\ninnermost\n"
    for i in range(50):
        b = b"b%d" % i
        data = b"Content-Type: multipart/mixed; boundary=" + b + b"\n\n--" + b + b"\n" + data
        data += b"\n--" + b + b"--\n"
    m = parse(data)
    assert any("nesting too deep" in d for d in m.defects)


def test_empty_and_odd_input() -> None:
    assert parse(b"").defects == ("empty message",)
    assert parse(b"", key="k").key == "k"
    assert parse(b"\n\n\n").text == "\n\n"
    m = parse(b"just some text without headers")
    assert m.text == "just some text without headers"
    assert m.sender == ""
    assert parse("not bytes", key="x").defects == ("not bytes: str",)  # type: ignore[arg-type]


def test_unparseable_date_is_none_and_recorded() -> None:
    m = parse(b"Date: the day after tomorrow\nFrom: a@b.example\n\nx")
    assert m.date is None
    assert "unreadable Date header" in m.defects
    naive = parse(b"Date: Mon, 26 Jun 2000 13:41:00 -0000\n\nx")
    assert naive.date == datetime(2000, 6, 26, 13, 41, tzinfo=UTC)


def test_enron_style_message() -> None:
    data = (
        b"Message-ID: <7203635.1075855928425.JavaMail.evans@thyme>\n"
        b"Date: Mon, 26 Jun 2000 13:41:00 -0700 (PDT)\n"
        b"From: susan.bellinghausen@enron.com\n"
        b"To: sally.beck@enron.com, kathy.kokas@enron.com\n"
        b"Subject: ENA Energy OPS-Showstopper Status\n"
        b"Cc: jim.pond@enron.com, john.valdes@enron.com, \n"
        b"\trena.d'souza@enron.com\n"
        b"Mime-Version: 1.0\n"
        b"Content-Type: text/plain; charset=ANSI_X3.4-1968\n"
        b"X-From: Susan Bellinghausen\n\n"
        b"Attached is a file summarizing the action plan.\n"
    )
    m = parse(data, "beck-s/showstopper_rpt/3")
    assert m.sender == "susan.bellinghausen@enron.com"
    assert m.cc == ("jim.pond@enron.com", "john.valdes@enron.com", "rena.d'souza@enron.com")
    assert m.date == datetime(2000, 6, 26, 20, 41, tzinfo=UTC)
    assert m.defects == ()


def test_message_pickles() -> None:
    m = load("attachments.eml")
    assert pickle.loads(pickle.dumps(m)) == m


def test_normalise_subject() -> None:
    assert normalise_subject("RE: Fwd:  Re[2]: Invoice  31") == "invoice 31"
    assert normalise_subject("AW: WG: Angebot") == "angebot"
    assert normalise_subject("Reorder") == "reorder"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_parse_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    m = parse(data, "fuzz")
    assert isinstance(m, Message)
    assert m.size == len(data)
    assert len(m.text) <= TEXT_CAP
    # The catch-all in parse() is a safety net; reaching it means a parser bug.
    assert not any(d.startswith("unreadable message") for d in m.defects), m.defects


_PIECES = st.sampled_from(
    [
        b"From: ",
        b"To: ",
        b"Subject: ",
        b"=?utf-8?B?",
        b"=?x-bad?Q?=FF=",
        b"?=",
        b"Content-Type: multipart/mixed; boundary=",
        b"Content-Type: text/html; charset=",
        b"Content-Transfer-Encoding: base64",
        b"Content-Transfer-Encoding: quoted-printable",
        b"Content-Disposition: attachment; filename*0*=utf-8''%FF; filename*1=",
        b"--b",
        b"--b--",
        b"b",
        b"<html><script>",
        b"<a href=x>",
        b"\n",
        b"\r\n",
        b"\n\n",
        b"\xff\xfe",
        b'"',
        b";",
        b"Date: Mon, 99 Foo 99999 99:99:99 +9999",
        b"utf-16",
        b"hex",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_PIECES, st.binary(max_size=20)), max_size=60))
def test_parse_never_raises_on_mail_like_bytes(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    m = parse(data, "fuzz")
    assert isinstance(m, Message)
    assert all(isinstance(d, str) for d in m.defects)
    assert not any(d.startswith("unreadable message") for d in m.defects), m.defects


# -- the fast path for plain address lists ---------------------------------------------------------

_LOCAL = st.from_regex(r"[a-zA-Z0-9+_'=-]{1,8}(\.[a-z0-9+_-]{1,8})?", fullmatch=True)
_DOMAIN = st.from_regex(r"[a-z0-9-]{1,8}(\.[a-z0-9-]{1,8}){0,2}", fullmatch=True)
_NAME_CHARS = st.text(alphabet="abcdefgh XYZ.-'=?_éü0123456789", max_size=20)
_ADDRESS = st.builds(lambda local, domain: f"{local}@{domain}", _LOCAL, _DOMAIN)
_ENTRY = st.one_of(
    _ADDRESS,
    st.builds(lambda name, addr: f"{name} <{addr}>", _NAME_CHARS, _ADDRESS),
    st.builds(lambda name, addr: f"{name}<{addr}>", _NAME_CHARS, _ADDRESS),
)


def _normalised(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(" ".join(name.split()), addr) for name, addr in pairs if name or addr]


@given(st.lists(_ENTRY, min_size=1, max_size=6), st.sampled_from([",", ", ", " ,  "]))
@settings(max_examples=400, deadline=None)
def test_plain_address_lists_read_as_the_stdlib_reads_them(
    entries: list[str], separator: str
) -> None:
    value = separator.join(entries)
    fast = _simple_addresses([value])
    assert fast is not None
    assert _normalised(fast) == _normalised(getaddresses([value]))


@given(st.text(alphabet='abc@<>, "();:.\\[]=?é\t', max_size=40))
@settings(max_examples=600, deadline=None)
def test_the_fast_path_agrees_with_the_stdlib_or_steps_aside(value: str) -> None:
    fast = _simple_addresses([value])
    if fast is not None:
        assert _normalised(fast) == _normalised(getaddresses([value])), value

"""Hostile and broken mail (tests/hostile.py) through parse() and a trained model.

Every kind of damage must parse without raising, give sane fields, and say in `defects` what was
cut. How long each message takes is the benchmark's business (`benchmarks/faults` prints the
slowest); these tests only run the messages, so a parse that hung would hang the test run.
"""

from __future__ import annotations

import codecs
import dataclasses
import encodings.aliases
import hashlib
import random
import re

import hostile
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triage.message import (
    HEADER_VALUE_CAP,
    MAX_HEADER_LINES,
    MAX_PARTS,
    MAX_RECIPIENTS,
    MESSAGE_CAP,
    STORED_TEXT,
    SUBJECT_CAP,
    TEXT_CAP,
    _codec,
    _header_end,
    _Parser,
    _split_quoted,
    from_bytes,
    parse,
    to_bytes,
)
from triage.model import TriageModel


@pytest.fixture(scope="module")
def model() -> TriageModel:
    return hostile.trained_model()


def defects_of(name: str) -> str:
    m = parse(hostile.make(name), name)
    assert hostile.sanity(m, hostile.make(name)) == ""
    return " | ".join(m.defects)


# --- the corpus ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", hostile.kinds())
def test_every_kind_parses_sanely(name: str) -> None:
    data = hostile.make(name)
    m = parse(data, name)
    assert hostile.sanity(m, data) == "", m.defects
    assert m.key == name
    if name not in hostile.HEADERLESS:
        assert m.message_id == f"<{name}.0@hostile.example>"
    assert all(isinstance(a.size, int) and a.size >= 0 for a in m.attachments)
    assert len(m.attachments) <= MAX_PARTS
    assert len(m.to) <= MAX_RECIPIENTS and len(m.cc) <= MAX_RECIPIENTS
    assert len(m.subject) <= SUBJECT_CAP
    assert from_bytes(to_bytes(m)) == dataclasses.replace(m, text=m.text[:STORED_TEXT])


def test_the_corpus_through_the_model(model: TriageModel) -> None:
    names, messages = [], []
    for name, data in hostile.corpus(seed=1):
        names.append(name)
        messages.append(parse(data, name))
    predictions = model.predict(messages)
    assert len(predictions) == len(messages)
    assert all(p.folder in model.classes and 0.0 <= p.confidence <= 1.0 for p in predictions)
    for message in messages:  # one at a time too, as `triage explain` does
        assert model.explain(message).folder in model.classes


def test_the_corpus_is_deterministic_and_covers_the_issue() -> None:
    def digest(seed: int) -> dict[str, str]:
        return {
            name: hashlib.sha256(data).hexdigest()
            for name, data in hostile.corpus(seed, quick=True, combinations=10)
        }

    assert digest(3) == digest(3)
    assert digest(3)["combination-0"] != digest(4)["combination-0"]
    kinds = hostile.kinds()
    for wanted in (
        "boundary-",
        "nested-100",
        "charset-",
        "nul-",
        "base64-",
        "qp-",
        "huge-",
        "recipients-10000",
        "header-1mb",
        "html-100k-nested",
        "html-1mb-attribute",
        "html-unclosed-comment",
        "html-million-entities",
    ):
        assert any(k.startswith(wanted) for k in kinds), wanted
    assert len(hostile.make("huge-plain-text")) >= 50 * 2**20
    to = re.search(rb"\nTo: ([^\n]*)", hostile.make("recipients-10000-to"))
    assert to is not None and to.group(1).count(b"@") == 10_000
    assert max(map(len, hostile.make("header-1mb-subject").split(b"\n"))) >= 2**20


# --- what the caps record ----------------------------------------------------------------------


def test_a_50_mb_message_is_read_up_to_the_cap() -> None:
    data = hostile.make("huge-attachment")
    m = parse(data)
    assert m.size == len(data) > MESSAGE_CAP
    assert "message larger than 2 MB: the rest skipped" in m.defects
    assert m.text.startswith("The readable part.")


def test_10000_recipients_and_a_1_mb_header_line() -> None:
    m = parse(hostile.make("recipients-10000-cc-and-1mb-header"))
    assert m.to == ("buyer@example.com",)
    assert len(m.cc) == MAX_RECIPIENTS and m.cc[0] == "person0@vendor0.example"
    assert "header line longer than 64 KB: cut" in m.defects
    assert any(d.startswith("address header of 64 KB") for d in m.defects)
    assert m.text == "Hello, please see the offer below.\n"  # the body starts after the header


def test_headers_after_a_1_mb_line_are_still_read() -> None:
    data = b"X-Junk: " + b"j" * 2**20 + b"\nFrom: a@b.example\nSubject: after\n\nbody\n"
    m = parse(data)
    assert (m.sender, m.subject, m.text) == ("a@b.example", "after", "body\n")
    assert "header line longer than 64 KB: cut" in m.defects


def test_a_folded_header_is_cut_and_header_lines_are_counted() -> None:
    folded = b"Subject: start" + b"\n x" * 100_000 + b"\nFrom: a@b.example\n\nbody\n"
    m = parse(folded)
    assert "more than 5000 header lines: the rest ignored" in m.defects
    assert m.sender == ""  # beyond the header lines read
    assert m.text == "body\n"
    long_fold = b"Subject: s\n " + b"y" * (HEADER_VALUE_CAP // 2) + b"\n " + b"z" * HEADER_VALUE_CAP
    m = parse(long_fold + b"\nFrom: a@b.example\n\nbody\n")
    assert m.sender == "a@b.example"
    assert "header line longer than 64 KB: cut" in m.defects


@pytest.mark.parametrize(
    ("name", "defect"),
    [
        ("nested-100", "MIME nesting too deep: inner parts skipped"),
        ("nested-100-message-rfc822", "MIME nesting too deep: inner parts skipped"),
        ("boundary-100k-parts", f"more than {MAX_PARTS} MIME parts: the rest skipped"),
        ("boundary-400k-lookalike-lines", "more than 1000 lines look like MIME boundaries"),
        ("header-100k-fields", f"more than {MAX_HEADER_LINES} header lines: the rest ignored"),
        ("header-1mb-content-type", "MIME header longer than 2048 characters: cut"),
        ("header-1mb-subject", f"Subject longer than {SUBJECT_CAP} characters: cut"),
        ("html-million-entities", "HTML longer than 128K characters: cut"),
        ("charset-unicode-escape-surrogates", "text/plain: lone surrogates replaced"),
        ("charset-encoded-words-surrogates", "header: lone surrogates replaced"),
        ("charset-1000-distinct-encoded-words", "header: unknown charset 'x-cs-"),
        ("charset-1mb-name", "text/plain: unknown charset 'xxxxxxxx"),
    ],
)
def test_caps_are_recorded(name: str, defect: str) -> None:
    assert defect in defects_of(name)


def test_pathological_html_still_gives_text_and_counts() -> None:
    m = parse(hostile.make("html-100k-links-and-images"))
    assert m.html_only and m.link_count > 1000 and m.image_count > 1000
    m = parse(hostile.make("html-unclosed-comment"))
    assert m.text == "visible"
    m = parse(hostile.make("html-only-whitespace-and-comments"))
    assert m.text == "" and "HTML longer than 128K characters: cut" in m.defects
    m = parse(hostile.make("html-100k-anchor-starts-without-close"))
    assert m.text.startswith("The readable part.")
    assert m.link_count == 0  # "<a " with no href is not a link
    m = parse(b"Content-Type: text/html\n\n" + b"<?xml version='1.0' encoding='utf-8'?>" * 3 + b"t")
    assert m.text == "t" and m.defects == ()  # several declarations: lxml, not the fallback


def test_a_multipart_split_by_find_matches_the_rfc() -> None:
    parts = b"--b \t\r\nContent-Type: text/plain\r\n\r\none\r\n--bx\r\nstill one\r\n--b\r\n\r\ntwo"
    data = b"Content-Type: multipart/mixed; boundary=b\r\n\r\npreamble\r\n" + parts
    m = parse(data + b"\r\n--b-- \r\nepilogue")
    assert m.text == "one\n--bx\nstill one\ntwo"
    assert m.defects == ()
    unclosed = parse(data)
    assert unclosed.text == m.text
    assert unclosed.defects == ("truncated multipart (no closing boundary)",)


# --- properties --------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile.messages())
def test_parse_never_raises_on_malformed_mail(data: bytes) -> None:
    m = parse(data, "fuzz")
    assert hostile.sanity(m, data) == "", m.defects
    assert len(m.text) <= TEXT_CAP
    assert all(isinstance(d, str) for d in m.defects)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(hostile.messages(scale=40))
def test_big_malformed_mail_parses_and_predicts(model: TriageModel, data: bytes) -> None:
    m = parse(data, "fuzz")
    assert hostile.sanity(m, data) == "", m.defects
    assert model.predict([m])[0].folder in model.classes
    assert from_bytes(to_bytes(m)).text == m.text[:STORED_TEXT]


@given(st.text(alphabet='";a= \\', max_size=40))
def test_parameters_split_like_the_quote_toggle(value: str) -> None:
    # The reference: flip "quoted" at every double quote, split on ; outside quotes.
    expected, buf, quoted = [], "", False
    for ch in value:
        quoted = not quoted if ch == '"' else quoted
        if ch == ";" and not quoted:
            expected.append(buf)
            buf = ""
        else:
            buf += ch
    expected.append(buf)
    assert _split_quoted(value, 1000) == expected


class _RawParts(_Parser):
    """A parser whose multipart splitting yields the raw parts, to compare with the reference."""

    def entity(self, raw: bytes) -> tuple[dict[str, list[bytes]], bytes]:
        return {}, raw


def reference_split(body: bytes, boundary: bytes) -> tuple[list[bytes], list[str]]:
    """How parse split multiparts before it used bytes.find: one regular expression."""
    delimiter = re.compile(rb"(?:^|\r?\n)--" + re.escape(boundary) + rb"(--)?[ \t]*(?=\r?\n|$)")
    parts: list[bytes] = []
    pos = None
    closed = False
    for m in delimiter.finditer(body):
        if pos is not None:
            parts.append(body[pos : m.start()])
        if m.group(1):
            closed = True
            break
        nl = body.find(b"\n", m.end())
        pos = nl + 1 if nl >= 0 else len(body)
    if pos is None:
        return [body], ["multipart boundary not found: body read as text"]
    if closed:
        return parts, []
    rest = body[pos:]
    return parts + ([rest] if rest.strip() else []), ["truncated multipart (no closing boundary)"]


_PIECES = st.sampled_from([b"-", b"--", b"b", b"bb", b"\n", b"\r", b" ", b"\t", b"x", b"\n--b"])


@settings(max_examples=300)
@given(st.lists(_PIECES, max_size=40).map(b"".join), st.sampled_from([b"b", b"bb", b"-b"]))
def test_multipart_split_matches_the_regular_expression(body: bytes, boundary: bytes) -> None:
    parser = _RawParts(b"", "")
    parts = [raw for _, raw in parser.split_multipart(body, boundary.decode())]
    assert (parts, parser.defects) == reference_split(body, boundary)


@given(st.binary(max_size=30).map(lambda b: b.replace(b"x", b"\n").replace(b"y", b"\r")))
def test_header_end_is_the_first_blank_line(data: bytes) -> None:
    m = re.search(rb"\r?\n\r?\n", data)
    assert _header_end(data) == (m.span() if m else None)


def test_every_standard_charset_name_is_still_known() -> None:
    names = set(encodings.aliases.aliases) | set(encodings.aliases.aliases.values())
    names |= {"utf-8", "UTF-8", "iso-8859-1", "windows-1252", "Shift_JIS", "ks_c_5601-1987"}
    for name in sorted(names):
        try:
            expected = codecs.lookup(name.lower()).name
        except LookupError:
            expected = None
        if len(name) <= 40:
            assert _codec(name.lower()) == expected, name
    assert _codec("x-made-up") is None and _codec("utf-8" + "x" * 40) is None


def test_random_messages_are_drawn_deterministically() -> None:
    a = hostile.build_message(hostile.RandomChooser(random.Random(5)))
    assert a == hostile.build_message(hostile.RandomChooser(random.Random(5)))

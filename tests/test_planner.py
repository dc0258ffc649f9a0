"""The planner's rules, before and around the model (pure: a stand-in model decides)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from triage.config import parse_config
from triage.errors import ModelError
from triage.message import Message
from triage.model import KEEP, Prediction
from triage.planner import (
    BELOW_THRESHOLD,
    DIGEST,
    MODEL,
    MODEL_KEEP,
    MOVED_BACK,
    NEVER_MOVE,
    OWN_DOMAIN,
    RULE,
    UNREADABLE_MAIL,
    Planned,
    Planner,
    header_hash,
    sender_matches,
    summarise,
)

CONFIG = """
[[accounts]]
name = "work"
backend = "maildir"
path = "{path}"
own_domains = ["corp.example"]
own_addresses = ["me@home.example"]
never_move = ["ceo@bigclient.example", "@auditor.example"]
confidence_threshold = 0.6

[[accounts.rules]]
from = "@acme.example"
folder = "Vendors/Acme"

[[accounts.rules]]
from = "newsletter@globex.example"
folder = "INBOX"
"""


class StandIn:
    """Answers with a fixed prediction per sender, like a trained model would."""

    def __init__(self, answers: dict[str, Prediction]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def predict(self, messages: Sequence[Message]) -> list[Prediction]:
        self.asked += [m.sender for m in messages]
        return [self.answers[m.sender] for m in messages]


def planner(tmp_path: object, model: Any) -> Planner:
    config = parse_config(CONFIG.format(path=tmp_path))
    return Planner(config.account(), model)


def plan_for(
    p: Planner, senders: list[str], filed_before: frozenset[str] = frozenset()
) -> list[Planned]:
    messages = [Message(key=str(i), sender=s) for i, s in enumerate(senders)]
    hashes = [f"h{i}" for i in range(len(senders))]
    return p.plan(list(range(1, len(senders) + 1)), messages, hashes, set(filed_before))


def test_rules_come_before_the_model(tmp_path: object) -> None:
    model = StandIn(
        {"rep@vendor.example": Prediction("Vendors/Vendor", 0.9, "Vendors/Generic", 0.05)}
    )
    p = planner(tmp_path, model)
    plan = plan_for(
        p,
        [
            "boss@corp.example",  # own domain
            "it@eu.corp.example",  # a subdomain of it
            "me@home.example",  # the buyer's own address
            "ceo@bigclient.example",  # never_move address
            "x@auditor.example",  # never_move domain
            "billing@acme.example",  # pinned by a rule to a folder
            "newsletter@globex.example",  # pinned to stay
            "rep@vendor.example",  # the model decides
        ],
    )
    assert [(i.destination, i.reason) for i in plan] == [
        ("INBOX", OWN_DOMAIN),
        ("INBOX", OWN_DOMAIN),
        ("INBOX", OWN_DOMAIN),
        ("INBOX", NEVER_MOVE),
        ("INBOX", NEVER_MOVE),
        ("Vendors/Acme", RULE),
        ("INBOX", RULE),
        ("Vendors/Vendor", MODEL),
    ]
    assert model.asked == ["rep@vendor.example"]  # only what no rule decided


def test_threshold_keep_and_moved_back(tmp_path: object) -> None:
    model = StandIn(
        {
            "unsure@v.example": Prediction("Vendors/V", 0.55, "Vendors/Generic", 0.4),
            "colleague@partner.example": Prediction(KEEP, 0.8, "Vendors/V", 0.1),
            "sure@v.example": Prediction("Vendors/V", 0.95, KEEP, 0.01),
        }
    )
    p = planner(tmp_path, model)
    plan = plan_for(
        p,
        ["unsure@v.example", "colleague@partner.example", "sure@v.example", "sure@v.example"],
        filed_before={"h3"},
    )
    assert [(i.destination, i.reason) for i in plan] == [
        ("INBOX", BELOW_THRESHOLD),
        ("INBOX", MODEL_KEEP),
        ("Vendors/V", MODEL),
        ("INBOX", MOVED_BACK),  # triage filed it before and it came back: never again
    ]
    assert plan[0].runner_up == "Vendors/V"  # what it would have been
    assert summarise(plan, "INBOX") == {"Vendors/V": 1, "stays in INBOX": 3}


def test_no_model_is_a_clear_error_only_when_one_is_needed(tmp_path: object) -> None:
    p = planner(tmp_path, None)
    assert plan_for(p, ["boss@corp.example"])[0].reason == OWN_DOMAIN
    with pytest.raises(ModelError, match="triage train"):
        plan_for(p, ["rep@vendor.example"])


def test_triages_own_digest_stays_in_the_inbox_whoever_it_seems_to_be_from(
    tmp_path: object,
) -> None:
    """The digest is appended to the inbox; even a config whose own_addresses do not name its
    From address (or a [[rules]] pin matching it) never files it."""
    model = StandIn({})
    p = planner(tmp_path, model)
    digest = Message(key="1", sender="rep@acme.example",
                     message_id="<triage-digest.2026-W47.work@corp.example>")  # fmt: skip
    lookalike = Message(key="2", sender="me@vendor.example", message_id="<triage-digest@x>")
    model.answers["me@vendor.example"] = Prediction("Vendors/Generic", 0.9, "", 0.1)
    plan = p.plan([1, 2], [digest, lookalike], ["h1", "h2"], set())
    assert [(d.destination, d.reason) for d in plan] == [
        ("INBOX", DIGEST),
        ("Vendors/Generic", MODEL),  # only the prefix triage writes counts
    ]


def test_a_message_the_parser_could_not_read_stays(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parser bug gives a Message with only an "unreadable" defect: it is never filed, even
    with a model keen to file it."""
    import triage.message

    def broken(self: object) -> None:
        raise RuntimeError("a parser bug")

    monkeypatch.setattr(triage.message._Parser, "run", broken)
    unreadable = triage.message.parse(b"From: rep@vendor.example\r\n\r\nhi", key="INBOX/1")
    model = StandIn({"": Prediction("Vendors/Generic", 0.99, "", 0.01)})
    plan = planner(tmp_path, model).plan([1], [unreadable], ["h1"], set())
    assert [(d.destination, d.reason) for d in plan] == [("INBOX", UNREADABLE_MAIL)]
    assert model.asked == []


def test_sender_patterns_and_header_hash() -> None:
    assert sender_matches("a@acme.example", "@acme.example")
    assert sender_matches("a@mail.acme.example", "@acme.example")
    assert not sender_matches("a@notacme.example", "@acme.example")
    assert sender_matches("A@Acme.example", "a@acme.example")
    raw = b"From: a@b\r\nSubject: x\r\n\r\nbody one"
    assert header_hash(raw) == header_hash(b"From: a@b\r\nSubject: x\r\n\r\nother body")
    assert header_hash(raw) != header_hash(b"From: a@b\r\nSubject: y\r\n\r\nbody one")

"""TriageModel: train, predict, explain, save and load (and refuse what it should refuse)."""

from __future__ import annotations

import json
import random
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sklearn

from triage.errors import ModelError
from triage.message import Message, parse
from triage.model import (
    KEEP,
    Identity,
    Prediction,
    TemperedLinear,
    TriageModel,
    describe_feature,
    fit_temperature,
    holdout_scores,
    holdout_split,
    infer_identity,
    softmax,
)

BUYER = "buyer@example.com"
GENERIC = "Vendors/Generic"

_TOPICS = {
    "Vendors/Acme": (
        "acme.com",
        ["Jane Roe", "Bob Stone"],
        ["Invoice {n} for support contract", "Renewal of maintenance {n}", "Support ticket {n}"],
        "Please find invoice {n} for the server support contract attached. Payment terms net 30.",
    ),
    "Vendors/Globex": (
        "globex.net",
        ["Hank Scorpio"],
        ["Shipment {n} dispatched", "Delivery schedule {n}", "Tracking for order {n}"],
        "Your shipment of laptops left our warehouse. Tracking number {n}, delivery Friday.",
    ),
}
_PITCHES = [
    "Boost your sales with our CRM",
    "Last chance: 50% off cloud storage",
    "Free webinar on procurement automation",
    "Exclusive offer for IT leaders",
]


def _mail(
    sender: str,
    name: str,
    subject: str,
    body: str,
    when: datetime,
    *,
    to: str = BUYER,
    bulk: bool = False,
) -> bytes:
    headers = [
        f'From: "{name}" <{sender}>',
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: {when.strftime('%a, %d %b %Y %H:%M:%S +0000')}",
        f"Message-ID: <{abs(hash((sender, subject, when)))}@{sender.split('@')[1]}>",
    ]
    if bulk:
        headers += ["List-Unsubscribe: <https://x.example/u>", "Precedence: bulk"]
        headers.append("Content-Type: text/html; charset=utf-8")
        html = f"<html><body><p>{body}</p>" + '<a href="https://x.example/a">go</a>' * 6
        return ("\n".join(headers) + "\n\n" + html + '<img src="x.png"></body></html>').encode()
    return ("\n".join(headers) + "\n\n" + body + "\n").encode()


def make_mailbox(n: int = 30, seed: int = 0) -> tuple[list[Message], list[str]]:
    """n messages per class: two partners, the generic bucket and keep (colleagues)."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    out: list[tuple[Message, str]] = []
    for i in range(n):
        for label, (domain, names, subjects, body) in _TOPICS.items():
            name = rng.choice(names)
            sender = name.split()[0].lower() + "@" + domain
            subject = rng.choice(subjects).format(n=rng.randrange(1000, 9999))
            raw = _mail(sender, name, subject, body.format(n=i), start + timedelta(hours=len(out)))
            out.append((parse(raw, f"{label}/{i}"), label))
        vendor = f"news@{rng.choice(['saasly', 'cloudco', 'leadgen', 'promo'])}{i}.example"
        pitch = rng.choice(_PITCHES)
        raw = _mail(
            vendor,
            "Marketing",
            pitch,
            pitch + " Click below.",
            start + timedelta(hours=len(out)),
            to=rng.choice([BUYER, "undisclosed-recipients:;"]),
            bulk=True,
        )
        out.append((parse(raw, f"g/{i}"), GENERIC))
        colleague = rng.choice(["anna", "ben", "carla"]) + "@example.com"
        raw = _mail(
            colleague,
            colleague.split("@")[0].title(),
            "Lunch on Thursday?",
            "Shall we meet for lunch with the team on Thursday?",
            start + timedelta(hours=len(out)),
        )
        out.append((parse(raw, f"k/{i}"), KEEP))
    rng.shuffle(out)
    return [m for m, _ in out], [label for _, label in out]


@pytest.fixture(scope="module")
def trained() -> tuple[TriageModel, list[Message], list[str]]:
    messages, labels = make_mailbox()
    model = TriageModel.train(messages, labels, generic=GENERIC)
    return model, messages, labels


def test_train_and_predict(trained: tuple[TriageModel, list[Message], list[str]]) -> None:
    model, _, _ = trained
    assert set(model.classes) == {"Vendors/Acme", "Vendors/Globex", GENERIC, KEEP}
    assert model.counts == {"Vendors/Acme": 30, "Vendors/Globex": 30, GENERIC: 30, KEEP: 30}
    test, truth = make_mailbox(n=5, seed=99)
    predictions = model.predict(test)
    assert len(predictions) == len(test)
    assert all(isinstance(p, Prediction) for p in predictions)
    hits = sum(p.folder == t for p, t in zip(predictions, truth, strict=True))
    assert hits / len(truth) >= 0.9
    for p in predictions:
        assert 0.0 < p.runner_up_confidence <= p.confidence <= 1.0
        assert p.runner_up != p.folder and p.runner_up in model.classes
    assert model.predict([]) == []


def test_unseen_partner_sender_goes_by_content(
    trained: tuple[TriageModel, list[Message], list[str]],
) -> None:
    model, _, _ = trained
    raw = _mail(
        "newperson@acme.com",
        "New Person",
        "Invoice 4242 for support contract",
        "Please find invoice 4242 for the server support contract attached.",
        datetime(2024, 6, 1, tzinfo=UTC),
    )
    assert model.predict([parse(raw)])[0].folder == "Vendors/Acme"


def test_decide_applies_threshold() -> None:
    p = Prediction("Vendors/Acme", 0.4, GENERIC, 0.3)
    assert p.decide(0.5) == KEEP
    assert p.decide(0.4) == "Vendors/Acme"


def test_holdout_scores_in_model(trained: tuple[TriageModel, list[Message], list[str]]) -> None:
    model, _, _ = trained
    holdout = model.scores["holdout"]
    assert holdout["test_messages"] == 24  # the newest 20% of 120
    assert holdout["train_messages"] == 96
    assert set(holdout["per_class"]) <= set(model.classes)
    assert 0.0 <= holdout["accuracy"] <= 1.0
    assert "partner_to_generic" in holdout and "generic_recall" in holdout
    assert holdout["temperature"] > 0


def test_holdout_split_holds_out_the_newest_of_each_class() -> None:
    messages, labels = make_mailbox(n=20)
    labels[:3] = ["Vendors/Tiny"] * 3  # fewer than 5 messages: training only
    train, test = holdout_split(messages, labels, 0.2)
    assert sorted(train + test) == list(range(len(messages)))
    for cls in set(labels):
        mine = [i for i in range(len(messages)) if labels[i] == cls]
        held = [i for i in test if labels[i] == cls]
        assert len(held) == (round(len(mine) * 0.2) if len(mine) >= 5 else 0)
        if held:
            newest_trained = max(messages[i].date for i in train if labels[i] == cls)
            assert min(messages[i].date for i in held) >= newest_trained


def test_holdout_scores_report_every_class() -> None:
    messages, labels = make_mailbox(n=20)
    scores, temperature = holdout_scores(messages, labels, generic=GENERIC)
    holdout = scores["holdout"]
    assert set(holdout["per_class"]) == set(labels)
    assert all(c["messages"] == 4 for c in holdout["per_class"].values())
    assert holdout["partner_to_generic"] == 0.0
    assert temperature > 0


def test_train_needs_two_classes() -> None:
    messages, _ = make_mailbox(n=3)
    with pytest.raises(ModelError, match="at least two"):
        TriageModel.train(messages, ["Vendors/Acme"] * len(messages))
    with pytest.raises(ModelError, match="labels"):
        TriageModel.train(messages, ["a"])


def test_progress_is_reported() -> None:
    messages, labels = make_mailbox(n=10)
    calls: list[tuple[int, int]] = []
    TriageModel.train(messages, labels, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 2) and calls[-1] == (2, 2)


def test_infer_identity_is_the_most_common_recipient() -> None:
    messages, _ = make_mailbox(n=5)
    identity = infer_identity(messages)
    assert identity.addresses == (BUYER,)
    assert identity.domains == ("example.com",)
    assert infer_identity([]) == Identity()


def test_buyer_features_use_the_given_identity() -> None:
    messages, labels = make_mailbox(n=10)
    model = TriageModel.train(
        messages, labels, identity=Identity(addresses=("someone@else.example",)), holdout=False
    )
    assert model.identity.addresses == ("someone@else.example",)
    inferred = TriageModel.train(messages, labels, holdout=False)
    assert inferred.identity.addresses == (BUYER,)


def test_explain(trained: tuple[TriageModel, list[Message], list[str]]) -> None:
    model, messages, labels = trained
    acme = next(m for m, lab in zip(messages, labels, strict=True) if lab == "Vendors/Acme")
    explanation = model.explain(acme, top=5)
    assert explanation.folder == explanation.prediction.folder == "Vendors/Acme"
    assert explanation.confidence == explanation.prediction.confidence
    assert 0 < len(explanation.features) <= 5
    weights = [w for _, w in explanation.features]
    assert weights == sorted(weights, reverse=True) and all(w > 0 for w in weights)
    names = " | ".join(d for d, _ in explanation.features)
    assert "acme" in names or "invoice" in names or "support" in names, names
    assert all(":" in d for d, _ in explanation.features)
    assert "__" not in names  # human-readable, not sklearn's block__token


def test_describe_feature() -> None:
    assert describe_feature("sender__dom=acme.com") == "from domain: acme.com"
    assert describe_feature("sender__addr=jane@acme.com") == "from: jane@acme.com"
    assert describe_feature("subject__invoice") == "subject word: invoice"
    assert describe_feature("subject__support contract") == "subject phrase: support contract"
    assert describe_feature("body__renewal") == "body word: renewal"
    assert describe_feature("body__00.00") == "body number: 00.00"
    assert describe_feature("recipients__cc=ops@x.example") == "cc: ops@x.example"
    assert describe_feature("signals__list-unsubscribe") == "signal: list-unsubscribe"


def test_generic_bar_makes_generic_harder_to_choose() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = np.where(X[:, 0] > 0, "partner", GENERIC)
    lenient = TemperedLinear(generic=GENERIC, generic_bar=1.0).fit(X, y)
    strict = TemperedLinear(generic=GENERIC, generic_bar=20.0).fit(X, y)
    n_lenient = int((lenient.predict(X) == GENERIC).sum())
    n_strict = int((strict.predict(X) == GENERIC).sum())
    assert n_strict < n_lenient
    # Only messages near the boundary change: generic ones far from it stay generic.
    assert n_strict > 0


def test_fit_temperature_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(4000, 4))
    proba = softmax(scores * 3.0)
    truth = np.array([rng.choice(4, p=p) for p in proba])
    assert fit_temperature(scores, truth) == pytest.approx(3.0, rel=0.15)


# --- persistence -------------------------------------------------------------------------------


def test_save_and_load_round_trip(
    tmp_path: Path, trained: tuple[TriageModel, list[Message], list[str]]
) -> None:
    model, messages, _ = trained
    path = model.save(tmp_path / "models", "buyer")
    assert path == tmp_path / "models" / "buyer.joblib"
    side = path.with_suffix(".json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(side.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["buyer.joblib", "buyer.json"]
    meta = json.loads(side.read_text())
    assert meta["sklearn_version"] == sklearn.__version__
    assert meta["classes"] == list(model.classes)
    assert meta["counts"] == model.counts
    assert meta["scores"]["holdout"]["test_messages"] == 24
    assert len(meta["sha256"]) == 64
    datetime.fromisoformat(meta["trained_at"])

    loaded = TriageModel.load(path)
    assert loaded.classes == model.classes
    assert loaded.predict(messages[:20]) == model.predict(messages[:20])
    assert TriageModel.load(side).classes == model.classes  # the sidecar path works too
    assert TriageModel.load(tmp_path / "models" / "buyer").classes == model.classes


def test_tampered_model_is_refused(
    tmp_path: Path, trained: tuple[TriageModel, list[Message], list[str]]
) -> None:
    model, _, _ = trained
    path = model.save(tmp_path, "m")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"sha256.*triage train"):
        TriageModel.load(path)


def test_other_sklearn_version_is_refused(
    tmp_path: Path, trained: tuple[TriageModel, list[Message], list[str]]
) -> None:
    model, _, _ = trained
    path = model.save(tmp_path, "m")
    side = path.with_suffix(".json")
    meta = json.loads(side.read_text())
    meta["sklearn_version"] = "1.0.2"
    side.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"scikit-learn 1\.0\.2.*triage train"):
        TriageModel.load(path)


def test_other_triage_version_is_refused(
    tmp_path: Path, trained: tuple[TriageModel, list[Message], list[str]]
) -> None:
    model, _, _ = trained
    path = model.save(tmp_path, "m")
    side = path.with_suffix(".json")
    meta = json.loads(side.read_text())
    meta["triage_version"] = "0.0.1"
    side.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"triage 0\.0\.1"):
        TriageModel.load(path)


def test_missing_or_broken_files_are_refused(
    tmp_path: Path, trained: tuple[TriageModel, list[Message], list[str]]
) -> None:
    model, _, _ = trained
    with pytest.raises(ModelError, match="not found"):
        TriageModel.load(tmp_path / "nothing.joblib")
    path = model.save(tmp_path, "m")
    side = path.with_suffix(".json")
    side.write_text("{not json")
    with pytest.raises(ModelError, match="unreadable"):
        TriageModel.load(path)
    side.unlink()
    with pytest.raises(ModelError, match="no sidecar"):
        TriageModel.load(path)


def test_save_replaces_an_older_model(
    tmp_path: Path, trained: tuple[TriageModel, list[Message], list[str]]
) -> None:
    model, _, _ = trained
    messages, labels = make_mailbox(n=8, seed=5)
    small = TriageModel.train(messages, labels, holdout=False)
    small.save(tmp_path, "m")
    model.save(tmp_path, "m")
    assert TriageModel.load(tmp_path / "m.joblib").counts == model.counts
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_token_tfidf_matches_sklearn(trained: tuple[TriageModel, list[Message], list[str]]) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    model, messages, _ = trained
    fields = model.pipeline[0].transform(messages[:40])
    for _, vec in model.pipeline[1].transformer_list:
        ours = vec.transform(fields)
        reference = TfidfVectorizer.transform(vec, fields)
        assert ours.shape == reference.shape
        assert abs(ours - reference).max() < 1e-6


def test_training_is_deterministic() -> None:
    messages, labels = make_mailbox(n=10, seed=3)
    a = TriageModel.train(messages, labels, generic=GENERIC)
    b = TriageModel.train(messages, labels, generic=GENERIC)
    assert np.array_equal(a.pipeline[-1].coef_, b.pipeline[-1].coef_)
    assert a.scores == b.scores

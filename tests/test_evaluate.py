"""Backtests on small generated folder trees, in both layouts."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from triage.errors import ConfigError
from triage.evaluate import (
    backtest,
    format_table,
    kfold_splits,
    load_tree,
    timeline_splits,
)
from triage.message import parse

START = datetime(2023, 5, 1, tzinfo=UTC)

# folder -> (sender domain, subject words, body words, bulk?)
KINDS = {
    "Vendors/Acme": (
        "acme.com",
        ["invoice", "support", "renewal"],
        "server support invoice",
        False,
    ),
    "Vendors/Globex": ("globex.net", ["shipment", "delivery"], "laptops shipped tracking", False),
    "Vendors/Generic": ("promo{n}.example", ["offer", "webinar"], "discount click now", True),
    "Archive": ("example.com", ["lunch", "team"], "meet the team for lunch", False),
}


def message_bytes(folder: str, i: int, rng: random.Random) -> bytes:
    domain, subjects, body, bulk = KINDS[folder]
    domain = domain.format(n=rng.randrange(50))
    when = START + timedelta(hours=i * 7 + rng.randrange(5))
    lines = [
        f"From: Someone <person{rng.randrange(3)}@{domain}>",
        "To: buyer@example.com",
        f"Subject: {rng.choice(subjects)} {rng.randrange(100)}",
        f"Date: {when.strftime('%a, %d %b %Y %H:%M:%S +0000')}",
        f"Message-ID: <{folder.replace('/', '.')}.{i}@{domain}>",
    ]
    if bulk:
        lines.append("List-Unsubscribe: <mailto:u@x.example>")
    return ("\n".join(lines) + f"\n\n{body} {rng.randrange(1000)}\n").encode()


def write_plain(root: Path, per_folder: int = 12) -> Path:
    rng = random.Random(0)
    i = 0
    for folder in KINDS:
        d = root / folder
        d.mkdir(parents=True)
        for n in range(per_folder):
            (d / str(n + 1)).write_bytes(message_bytes(folder, i, rng))
            i += 1
    (root / "README.txt").write_text("not a message")  # files at the root have no folder
    return root


def write_maildir(root: Path, per_folder: int = 12) -> Path:
    """Maildir++: Archive mail in the root (INBOX), the others in .A.B folders."""
    rng = random.Random(1)
    i = 0
    for folder in KINDS:
        base = root if folder == "Archive" else root / ("." + folder.replace("/", "."))
        for sub in ("cur", "new", "tmp"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        for n in range(per_folder):
            sub = "cur" if n % 3 else "new"
            name = f"{1700000000 + i}.M{i}P1.host,S=100:2,S" if sub == "cur" else f"{i}.x.host"
            (base / sub / name).write_bytes(message_bytes(folder, i, rng))
            i += 1
        (base / "tmp" / "partial").write_bytes(b"From: half-written")  # tmp/ is not mail
    (root / "dovecot-uidlist").write_text("3 V1 N1\n")
    (root / ".Vendors.Acme" / "maildirfolder").write_text("")
    return root


def test_load_tree_plain_layout(tmp_path: Path) -> None:
    root = write_plain(tmp_path / "tree")
    (root / "Vendors" / "Acme" / ".hidden").write_text("x")
    items = load_tree(root)
    folders = {f for f, _ in items}
    assert folders == set(KINDS)  # nested dirs flattened to a/b; README and hidden files skipped
    assert len(items) == 12 * len(KINDS)
    acme = [m for f, m in items if f == "Vendors/Acme"]
    assert all(m.sender.endswith("@acme.com") for m in acme)
    assert acme[0].key == "Vendors/Acme/1"


def test_load_tree_maildir_layout(tmp_path: Path) -> None:
    root = write_maildir(tmp_path / "Maildir")
    items = load_tree(root)
    folders = sorted({f for f, _ in items})
    assert folders == ["INBOX", "Vendors/Acme", "Vendors/Generic", "Vendors/Globex"]
    assert len(items) == 12 * len(KINDS)  # cur/ and new/, never tmp/ or dovecot files
    inbox = [m for f, m in items if f == "INBOX"]
    assert all(m.sender.endswith("@example.com") for m in inbox)


def test_load_tree_decodes_modified_utf7_folder_names(tmp_path: Path) -> None:
    d = tmp_path / "md" / ".Lieferanten.M&APw-ller" / "cur"
    d.mkdir(parents=True)
    (d / "1").write_bytes(b"From: a@b.example\n\nhi")
    (tmp_path / "md" / "cur").mkdir()
    assert [f for f, _ in load_tree(tmp_path / "md")] == ["Lieferanten/Müller"]


def test_load_tree_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        load_tree(tmp_path / "missing")
    with pytest.raises(ConfigError, match="no messages"):
        backtest(tmp_path)


def check_shape(result: dict, protocol: str) -> None:
    assert result["protocol"] == protocol
    assert set(result["models"]) == {"triage", "nb-words", "svm-tfidf"}
    for entry in result["models"].values():
        assert 0.0 <= entry["accuracy"] <= 1.0
        assert len(entry["split_accuracy"]) == result["splits"]
    json.dumps(result)  # the whole result is JSON


def test_kfold_with_roles_plain_tree(tmp_path: Path) -> None:
    root = write_plain(tmp_path / "tree")
    result = backtest(root, "kfold", generic="Vendors/Generic", keep=["Archive"], threshold=0.5)
    check_shape(result, "kfold")
    assert result["messages"] == 48 and result["folders"] == 4 and result["splits"] == 5
    assert result["roles"] == {
        "generic": "Vendors/Generic",
        "keep": ["Archive"],
        "partner_messages": 24,
        "generic_messages": 12,
        "keep_messages": 12,
    }
    for entry in result["models"].values():
        for rate in ("partner_to_generic", "generic_recall", "keep_moved"):
            assert 0.0 <= entry[rate] <= 1.0
    triage = result["models"]["triage"]
    assert triage["accuracy"] >= 0.9  # the kinds are trivially separable
    assert triage["partner_to_generic"] == 0.0
    wt = triage["with_threshold"]
    assert wt["threshold"] == 0.5
    assert wt["partner_to_generic"] <= triage["partner_to_generic"]
    assert wt["generic_recall"] <= triage["generic_recall"]
    assert 0.0 <= wt["left_in_inbox"] <= 1.0
    table = format_table(result)
    assert "partner->generic" in table and "svm-tfidf" in table and "triage @ 0.50" in table


def test_threshold_one_leaves_everything_in_the_inbox(tmp_path: Path) -> None:
    root = write_plain(tmp_path / "tree", per_folder=8)
    result = backtest(root, "kfold", generic="Vendors/Generic", threshold=1.01)
    wt = result["models"]["triage"]["with_threshold"]
    assert wt["left_in_inbox"] == 1.0
    assert wt["generic_recall"] == 0.0 and wt["partner_to_generic"] == 0.0


def test_timeline_on_maildir(tmp_path: Path) -> None:
    root = write_maildir(tmp_path / "Maildir")
    progress: list[tuple[int, int]] = []
    result = backtest(
        root, "timeline", keep=["INBOX"], step=10, progress=lambda d, t: progress.append((d, t))
    )
    check_shape(result, "timeline")
    # 48 messages, step 10: train 10/20/30 and test the next 10 each time
    assert result["splits"] == 3
    assert progress[0] == (0, 3) and progress[-1] == (3, 3)
    assert result["roles"]["keep"] == ["INBOX"] and result["roles"]["keep_messages"] == 12
    assert result["models"]["triage"]["partner_to_generic"] is None  # no generic given
    assert result["models"]["triage"]["keep_moved"] is not None


def test_timeline_without_roles_has_no_rates(tmp_path: Path) -> None:
    root = write_plain(tmp_path / "tree")
    result = backtest(root, "timeline", step=10)
    assert "roles" not in result
    assert "partner_to_generic" not in result["models"]["triage"]
    assert "partner->generic" not in format_table(result)


def test_bad_options(tmp_path: Path) -> None:
    root = write_plain(tmp_path / "tree", per_folder=3)
    with pytest.raises(ConfigError, match="unknown protocol"):
        backtest(root, "bogus")
    with pytest.raises(ConfigError, match="'Nope' is not in the tree"):
        backtest(root, "kfold", generic="Nope")
    with pytest.raises(ConfigError, match="use protocol kfold"):
        backtest(root, "timeline")  # 12 messages < 2 x 100


def test_timeline_splits_follow_the_date() -> None:
    raws = [
        b"Date: Mon, 03 Jan 2000 10:00:00 +0000\n\nc",
        b"Date: Sat, 01 Jan 2000 10:00:00 +0000\n\na",
        b"\n\nundated",
        b"Date: Sun, 02 Jan 2000 10:00:00 +0000\n\nb",
    ]
    messages = [parse(r) for r in raws]
    splits = timeline_splits(messages, step=1)
    assert [(tr, te) for tr, te in splits] == [([1], [3]), ([1, 3], [0]), ([1, 3, 0], [2])]


def test_kfold_splits_are_stratified_and_seeded() -> None:
    labels = ["a"] * 50 + ["b"] * 10 + ["c"] * 2
    splits = kfold_splits(labels, folds=5, seed=0)
    assert len(splits) == 5
    tests = [i for _, te in splits for i in te]
    assert sorted(tests) == list(range(62))  # every message tested exactly once
    for train, test in splits:
        assert not set(train) & set(test)
        assert sum(labels[i] == "a" for i in test) == 10
        assert sum(labels[i] == "b" for i in test) == 2
    assert kfold_splits(labels, seed=0) == splits
    assert kfold_splits(labels, seed=1) != splits

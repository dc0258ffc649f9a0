"""Backtests: how well would triage have filed a mailbox whose filing we already know?

Two protocols over a folder tree (the folder is the label):

- ``timeline``, the protocol of Bekkerman et al. (2004): sort by Date; for N = step, 2*step, ...
  train on the first N messages and test on the next `step`; report the mean accuracy over the
  splits. Forced choice: the most likely folder counts, there is no confidence threshold.
- ``kfold``: stratified 5-fold cross-validation with a fixed seed.

Every run also trains two plain baselines on the same splits (MultinomialNB on word counts and
LinearSVC on tf-idf words), so a figure always comes with its yardstick. Given roles (a generic
bucket, keep folders), it also reports the error that matters most to a buyer: partner mail sent
to the generic bucket; for triage both as a forced choice and at the confidence threshold, below
which a message stays in the inbox, since that is how it runs.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from triage.errors import ConfigError
from triage.mailbox import utf7
from triage.message import Message, parse
from triage.model import BASELINES, KEEP, Baseline, Settings, TriageModel, role_rates

logger = logging.getLogger(__name__)

PROTOCOLS = ("timeline", "kfold")
FOLDS = 5
#: Maildir bookkeeping files that are not messages.
_NOT_MAIL = {"dovecot-uidlist", "dovecot-keywords", "maildirfolder", "subscriptions"}


# --- reading a tree ----------------------------------------------------------------------------


def load_tree(path: Path) -> list[tuple[str, Message]]:
    """Every message under `path` with its folder name, in a stable order.

    Two layouts: a Maildir++ tree (``cur/`` and ``new/`` at the root = INBOX, ``.A.B/`` = folder
    ``A/B``), or plain folders of message files (``<folder>/<file>``; nested directories give
    ``a/b`` names; files directly under `path` have no folder and are skipped).
    """
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"{path} is not a directory: give a Maildir or a tree of folders")
    files = list(_maildir_files(path) if _is_maildir(path) else _plain_files(path))
    out = []
    for folder, file in files:
        try:
            data = file.read_bytes()
        except OSError as exc:
            logger.warning("skipped unreadable %s: %s", file, exc)
            continue
        out.append((folder, parse(data, str(file.relative_to(path)))))
    return out


def _is_maildir(path: Path) -> bool:
    if (path / "cur").is_dir() or (path / "new").is_dir():
        return True
    return any(
        p.is_dir() and p.name.startswith(".") and (p / "cur").is_dir() for p in path.iterdir()
    )


def _maildir_files(path: Path) -> Iterator[tuple[str, Path]]:
    folders = [("INBOX", path)]
    folders += sorted(
        (_maildir_name(p.name[1:]), p)
        for p in path.iterdir()
        if p.is_dir()
        and p.name.startswith(".")
        and p.name not in (".", "..")
        and ((p / "cur").is_dir() or (p / "new").is_dir())
    )
    for name, folder in folders:
        for sub in ("cur", "new"):
            d = folder / sub
            if d.is_dir():
                for f in sorted(d.iterdir()):
                    if f.is_file() and not f.name.startswith("."):
                        yield name, f


def _maildir_name(name: str) -> str:
    """Maildir++ `A.B` (modified UTF-7, RFC 3501) -> `A/B`."""
    return "/".join(utf7.decode(part) for part in name.split("."))


def _plain_files(path: Path) -> Iterator[tuple[str, Path]]:
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(path)
        if rel == Path("."):
            continue  # files at the root belong to no folder (READMEs and the like)
        folder = rel.as_posix()
        for name in sorted(filenames, key=_natural):
            if not name.startswith(".") and name not in _NOT_MAIL:
                yield folder, Path(dirpath) / name


def _natural(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (1 << 62, name)


# --- splits ------------------------------------------------------------------------------------


def timeline_splits(
    messages: Sequence[Message], step: int = 100
) -> list[tuple[list[int], list[int]]]:
    """The paper's splits: by Date, train on the first N, test on the next `step` (full only)."""
    far = datetime.max.replace(tzinfo=UTC)
    # Undated messages go last: they cannot be placed in time, and last they never train a test.
    order = sorted(range(len(messages)), key=lambda i: (messages[i].date or far, i))
    return [(order[:n], order[n : n + step]) for n in range(step, len(order) - step + 1, step)]


def kfold_splits(
    labels: Sequence[str], folds: int = FOLDS, seed: int = 0
) -> list[tuple[list[int], list[int]]]:
    """Stratified k-fold: each class dealt round-robin over the folds after a seeded shuffle."""
    rng = random.Random(seed)
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    fold_of = [0] * len(labels)
    offset = 0
    for label in sorted(by_class):
        idx = by_class[label]
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            fold_of[i] = (offset + j) % folds
        offset += len(idx)  # small classes start where the last one stopped: folds stay even
    splits = []
    for f in range(folds):
        test = [i for i in range(len(labels)) if fold_of[i] == f]
        train = [i for i in range(len(labels)) if fold_of[i] != f]
        if test and train:
            splits.append((train, test))
    return splits


# --- the backtest ------------------------------------------------------------------------------


def backtest(
    path: Path,
    protocol: str = "timeline",
    *,
    generic: str | None = None,
    keep: Sequence[str] = (),
    threshold: float = 0.5,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    step: int = 100,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Backtest triage and the baselines on the folder tree at `path` (see `load_tree`)."""
    items = load_tree(path)
    if not items:
        raise ConfigError(f"{path} holds no messages: give a Maildir or a tree of folders")
    return backtest_messages(
        items,
        protocol,
        generic=generic,
        keep=keep,
        threshold=threshold,
        seed=seed,
        progress=progress,
        step=step,
        settings=settings,
    )


def backtest_messages(
    items: Sequence[tuple[str, Message]],
    protocol: str = "timeline",
    *,
    generic: str | None = None,
    keep: Sequence[str] = (),
    threshold: float = 0.5,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    step: int = 100,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """`backtest` on messages already loaded: (folder, message) pairs."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}: choose one of {', '.join(PROTOCOLS)}")
    folders = sorted({f for f, _ in items})
    missing = [name for name in (generic, *keep) if name is not None and name not in folders]
    if missing:
        raise ConfigError(
            f"folder {missing[0]!r} is not in the tree (it has {len(folders)} folders: "
            f"{', '.join(folders[:8])}{', ...' if len(folders) > 8 else ''})"
        )
    keep_set = set(keep)
    messages = [m for _, m in items]
    labels = [KEEP if f in keep_set else f for f, _ in items]
    roles = generic is not None or bool(keep_set)

    if protocol == "timeline":
        splits = timeline_splits(messages, step)
        if not splits:
            raise ConfigError(
                f"the timeline protocol needs at least {2 * step} messages; the tree has "
                f"{len(messages)}: use protocol kfold"
            )
    else:
        splits = kfold_splits(labels, FOLDS, seed)
        if not splits:
            raise ConfigError("k-fold needs at least two messages")

    names = ("triage", *BASELINES)
    accuracy: dict[str, list[float]] = {n: [] for n in names}
    seconds: dict[str, float] = dict.fromkeys(names, 0.0)
    truth_all: list[str] = []
    forced: dict[str, list[str]] = {n: [] for n in names}
    at_threshold: list[str] = []
    if progress:
        progress(0, len(splits))
    for k, (train, test) in enumerate(splits):
        train_m = [messages[i] for i in train]
        train_l = [labels[i] for i in train]
        test_m = [messages[i] for i in test]
        truth = [labels[i] for i in test]
        truth_all.extend(truth)

        t0 = time.perf_counter()
        if len(set(train_l)) < 2:
            predictions = None
            guess = [train_l[0]] * len(test_m)
        else:
            # The holdout calibrates the confidence; a forced choice without roles ignores it.
            model = TriageModel.train(
                train_m, train_l, generic=generic, settings=settings, holdout=roles
            )
            predictions = model.predict(test_m)
            guess = [p.folder for p in predictions]
        seconds["triage"] += time.perf_counter() - t0
        forced["triage"].extend(guess)
        accuracy["triage"].append(_accuracy(truth, guess))
        if predictions is None:
            at_threshold.extend(KEEP for _ in test_m)
        else:
            at_threshold.extend(p.decide(threshold) for p in predictions)

        for name in BASELINES:
            t0 = time.perf_counter()
            guess = Baseline(name).fit(train_m, train_l).predict_labels(test_m)
            seconds[name] += time.perf_counter() - t0
            forced[name].extend(guess)
            accuracy[name].append(_accuracy(truth, guess))
        if progress:
            progress(k + 1, len(splits))

    models: dict[str, dict[str, Any]] = {}
    for name in names:
        entry: dict[str, Any] = {
            "accuracy": _mean(accuracy[name]),
            "split_accuracy": [round(a, 4) for a in accuracy[name]],
            "seconds": round(seconds[name], 2),
        }
        if roles:
            entry.update(role_rates(truth_all, forced[name], generic))
        models[name] = entry
    if roles:
        rates: dict[str, Any] = dict(role_rates(truth_all, at_threshold, generic))
        partner = [
            (t, p) for t, p in zip(truth_all, at_threshold, strict=True) if t not in (generic, KEEP)
        ]
        rates["threshold"] = threshold
        rates["left_in_inbox"] = sum(p == KEEP for p in at_threshold) / len(at_threshold)
        rates["partner_filed_correctly"] = (
            sum(t == p for t, p in partner) / len(partner) if partner else None
        )
        rates["accuracy"] = _accuracy(truth_all, at_threshold)
        models["triage"]["with_threshold"] = rates

    result: dict[str, Any] = {
        "protocol": protocol,
        "messages": len(messages),
        "folders": len(folders),
        "splits": len(splits),
        "models": models,
    }
    if protocol == "timeline":
        result["step"] = step
    else:
        result["folds"] = FOLDS
        result["seed"] = seed
    if roles:
        result["roles"] = {
            "generic": generic,
            "keep": sorted(keep_set),
            "partner_messages": sum(lab not in (generic, KEEP) for lab in labels),
            "generic_messages": sum(lab == generic for lab in labels) if generic else 0,
            "keep_messages": sum(lab == KEEP for lab in labels),
        }
    return result


def _accuracy(truth: Sequence[str], guess: Sequence[str]) -> float:
    return sum(t == g for t, g in zip(truth, guess, strict=True)) / len(truth) if truth else 0.0


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


# --- the human table ---------------------------------------------------------------------------


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def format_table(result: dict[str, Any]) -> str:
    """A backtest result as a small text table for a terminal."""
    head = (
        f"{result['protocol']} protocol: {result['messages']} messages, "
        f"{result['folders']} folders, {result['splits']} splits"
    )
    lines = [head]
    roles = result.get("roles")
    if roles:
        lines.append(
            f"roles: generic = {roles['generic'] or '-'}, keep = {', '.join(roles['keep']) or '-'}"
            f" ({roles['partner_messages']} partner, {roles['generic_messages']} generic, "
            f"{roles['keep_messages']} keep messages)"
        )
    lines.append("")
    cols = ["model", "accuracy"]
    if roles:
        cols += ["partner->generic", "generic recall", "keep moved"]
    rows = []
    for name, entry in result["models"].items():
        row = [name, _pct(entry["accuracy"])]
        if roles:
            row += [
                _pct(entry.get("partner_to_generic"), 2),
                _pct(entry.get("generic_recall")),
                _pct(entry.get("keep_moved")),
            ]
        rows.append(row)
        wt = entry.get("with_threshold")
        if wt:
            rows.append(
                [
                    f"{name} @ {wt['threshold']:.2f}",
                    "-",
                    _pct(wt.get("partner_to_generic"), 2),
                    _pct(wt.get("generic_recall")),
                    _pct(wt.get("keep_moved")),
                ]
            )
    widths = [max(len(r[i]) for r in [cols, *rows]) for i in range(len(cols))]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    lines.append(fmt.format(*cols))
    lines.extend(fmt.format(*r) for r in rows)
    for entry in result["models"].values():
        wt = entry.get("with_threshold")
        if wt:
            lines.append("")
            lines.append(
                f"at threshold {wt['threshold']:.2f}: {_pct(wt['left_in_inbox'])} left in the "
                f"inbox, {_pct(wt.get('partner_filed_correctly'))} of partner mail filed into "
                "its own folder"
            )
    return "\n".join(lines)

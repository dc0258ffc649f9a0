"""`triage demo` (what `make demo` runs): the whole loop on the built-in sample mailbox."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from triage.cli import cli
from triage.mailbox.maildir import MaildirMailbox


def test_demo_files_the_new_week(tmp_path: Path) -> None:
    keep = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--keep", str(keep)])
    assert result.exit_code == 0, result.output
    accuracy = re.search(r"Accuracy on the new week: ([0-9.]+)% \((\d+) of (\d+)\)", result.output)
    assert accuracy, result.output
    assert float(accuracy.group(1)) >= 80.0
    assert int(accuracy.group(3)) >= 50
    assert "Vendors/Generic" in result.output
    # The mailbox is left for inspection, with mail filed out of the inbox.
    with MaildirMailbox(keep / "Mail") as box:
        names = {f.name for f in box.list_folders()}
        assert "Vendors/Generic" in names
        assert len([n for n in names if n.startswith("Vendors/")]) >= 9
    assert list((keep / "state" / "models" / "demo").glob("*.joblib"))
    # The buyer's two moves are noticed and learnt from, and the model is retrained.
    assert "The buyer moved 2 messages by hand:" in result.output
    assert "Corrections learned: 2;" in result.output
    assert re.search(
        r"Retrained on \d+ messages, holdout accuracy [0-9.]+%: now in use", (result.output)
    )
    # The digest: written where the summary says, with the week's flags and the moves.
    path = re.search(r"Digest HTML: (\S+)", result.output)
    assert path and Path(path.group(1)) == keep / "digest.html"
    html = (keep / "digest.html").read_text()
    for flag in ("Unusual invoice", "Renewal coming up", "Bad news", "Wrong name"):
        assert flag in html and f"[{flag}]" in result.output
    assert "What triage learned" in html
    assert "Vendors/Generic &rarr; Vendors/" in html  # the promoted vendor's move
    with MaildirMailbox(keep / "Mail") as box:
        box.select("INBOX")
        ids = box.fetch_message_ids(box.uids_above(0)).values()
    assert len([m for m in ids if m.startswith("<triage-digest.")]) == 1


def test_demo_without_keep_leaves_the_digest_in_the_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    tempfile.tempdir = None  # re-read TMPDIR
    try:
        result = CliRunner().invoke(cli, ["demo"])
    finally:
        tempfile.tempdir = None
    assert result.exit_code == 0, result.output
    assert f"Digest HTML: {tmp_path / 'triage-demo-digest.html'}" in result.output
    assert "Needs your attention" in (tmp_path / "triage-demo-digest.html").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["triage-demo-digest.html"]


def test_demo_refuses_a_non_empty_keep_dir(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    result = CliRunner().invoke(cli, ["demo", "--keep", str(tmp_path)])
    assert result.exit_code == 2
    assert "not empty" in result.output

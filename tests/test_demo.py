"""`triage demo` (what `make demo` runs): the whole loop on the built-in sample mailbox."""

from __future__ import annotations

import re
from pathlib import Path

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


def test_demo_refuses_a_non_empty_keep_dir(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    result = CliRunner().invoke(cli, ["demo", "--keep", str(tmp_path)])
    assert result.exit_code == 2
    assert "not empty" in result.output

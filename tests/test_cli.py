"""The command line through click's CliRunner: exit codes, messages, help on every command."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from triage.cli import cli
from triage.mailbox.maildir import MaildirMailbox


def all_commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        found.append((f"{prefix}{name}", command))
        if isinstance(command, click.Group):
            found += all_commands(command, f"{prefix}{name} ")
    return found


def test_every_command_has_help_text() -> None:
    runner = CliRunner()
    commands = all_commands(cli)
    assert {"check"} <= {name for name, _ in commands}
    for name, command in commands:
        assert command.help and len(command.help.strip()) > 20, f"{name} has no help text"
        result = runner.invoke(cli, [*name.split(), "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.output


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert "triage" in result.output


def write_maildir_config(tmp_path: Path, **extra: str) -> Path:
    root = tmp_path / "Mail"
    with MaildirMailbox(root, create=True) as box:
        for folder in (
            "Vendors/Acme",
            "Vendors/Globex",
            "Vendors/Generic",
            "Archive",
            "Sent",
            "Projects",
        ):
            box.create_folder(folder)
    lines = [
        "[[accounts]]",
        'name = "local"',
        'backend = "maildir"',
        f'path = "{root}"',
        'own_domains = ["corp.example"]',
        *(f"{k} = {v}" for k, v in extra.items()),
    ]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_check_on_a_maildir_shows_roles(tmp_path: Path) -> None:
    config = write_maildir_config(tmp_path)
    result = CliRunner().invoke(cli, ["--config", str(config), "check"])
    assert result.exit_code == 0, result.output
    lines = {
        line.split()[0]: line.split()[1]
        for line in result.output.splitlines()
        if line.startswith("  ")
    }
    assert lines == {
        "INBOX": "inbox",
        "Vendors": "ignored",
        "Vendors/Acme": "partner",
        "Vendors/Globex": "partner",
        "Vendors/Generic": "generic",
        "Archive": "keep",
        "Sent": "ignored",
        "Projects": "ignored",
    }
    assert "Capabilities: MOVE yes" in result.output


def test_config_from_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_CONFIG", str(write_maildir_config(tmp_path)))
    result = CliRunner().invoke(cli, ["check"])
    assert result.exit_code == 0, result.output


def test_bad_config_is_one_clear_error(tmp_path: Path) -> None:
    config = write_maildir_config(tmp_path, confidence_treshold="0.7")
    result = CliRunner().invoke(cli, ["--config", str(config), "check"])
    assert result.exit_code == 2
    assert 'unknown key "confidence_treshold"' in result.output
    assert 'did you mean "confidence_threshold"' in result.output
    assert "Traceback" not in result.output


def test_missing_config_says_how_to_make_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "nope.toml"), "check"])
    assert result.exit_code == 2
    assert "nope.toml" in result.output
    assert "triage init" in result.output


def test_missing_maildir_is_a_mailbox_error(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[[accounts]]\nname = "x"\nbackend = "maildir"\npath = "{tmp_path}/no"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "check"])
    assert result.exit_code == 3
    assert "not a Maildir" in result.output


def test_unknown_account_lists_the_names(tmp_path: Path) -> None:
    config = write_maildir_config(tmp_path)
    result = CliRunner().invoke(cli, ["--config", str(config), "check", "--account", "locl"])
    assert result.exit_code == 2
    assert "local" in result.output


def test_python_dash_m_and_the_console_script() -> None:
    import subprocess
    import sys

    script = Path(sys.executable).parent / "triage"  # installed next to the interpreter
    assert script.exists(), "the triage console script is not installed"
    for command in ([sys.executable, "-m", "triage", "--help"], [str(script), "--version"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "triage" in result.stdout


def test_evaluate_json_on_a_maildir(tmp_path: Path) -> None:
    import json

    from triage import sample

    sample.write_maildir(sample.build(seed=3, weeks=8), tmp_path / "Mail")
    result = CliRunner().invoke(
        cli,
        [
            "evaluate",
            str(tmp_path / "Mail"),
            "--protocol",
            "kfold",
            "--generic",
            "Vendors/Generic",
            "--keep",
            "Archive",
            "--keep",
            "INBOX",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["protocol"] == "kfold"
    assert report["splits"] == 5
    assert report["messages"] > 200
    assert set(report["models"]) == {"triage", "nb-words", "svm-tfidf"}
    for scores in report["models"].values():
        assert 0.0 <= scores["accuracy"] <= 1.0
        assert "partner_to_generic" in scores and "generic_recall" in scores
    assert report["models"]["triage"]["accuracy"] >= report["models"]["nb-words"]["accuracy"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "3x"], "Invalid value for '--since': '3x' is not a period"),
        (["--since", "400d"], "at most 366 days"),
        (["--until", "yesterday"], "Invalid value for '--until': 'yesterday' is not a date"),
    ],
)
def test_digest_options_are_checked_before_anything_runs(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "none.toml"), "digest", *args])
    assert result.exit_code == 2
    assert message in result.output

"""The README's quick start, command by command, against a real Dovecot; and `triage init`'s
connection test.

The commands are read out of README.md's "Quick start on a real mailbox" section, so the README
cannot drift from what works: every `triage ...` line in its code blocks runs (in order, as a
user would type it, with HOME and the XDG dirs in a temp dir so the config and state land in
their default places), every other line must be one this test knows how to stand in for
(exporting the password) or knows it must skip (installing the systemd unit). A new `triage`
line in the README runs here automatically and must exit 0; EXPECTED may say what its output
should contain.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from dovecot import ImapAccount
from helpers import seed_history, where_is

from triage import sample
from triage.cli import cli

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Quick start on a real mailbox"

#: Programs whose lines the test does not run, and why.
SKIPPED = {
    "mkdir": "creates the systemd user dir",
    "cp": "installs contrib/triage.service",
    "systemctl": "needs a user session's systemd",
    "journalctl": "reads the service's log",
    "loginctl": "changes the login session",
}

#: What the output of a README command must contain, by its first words after `triage`.
EXPECTED: dict[str, tuple[str, ...]] = {
    "init": ("Wrote ", "Testing the connection...", "Connected: ", "Folders:"),
    "check": ("Connected: ", "MOVE yes", "Vendors/Generic", "generic"),
    "train": ("Trained on ", "Holdout"),
    "run --dry-run": ("Dry run: ", "nothing was changed"),
    "run --once": ("Run 1: 0 new messages",),
    "status": ("work:", "last run: #1"),
    "digest": ("Digest 20", "delivered to INBOX as <triage-digest."),
}


def readme_commands() -> list[list[str]]:
    """The lines of the code blocks in the README's quick start section, as shell words
    (comments removed)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n{SECTION}\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end > 0 else len(text)]
    lines: list[str] = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", section, re.DOTALL | re.MULTILINE):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                lines.append(words)
    return lines


def interactive_answers(account: ImapAccount, buyer: sample.SampleMailbox) -> str:
    """What a user of the test server would type at `triage init`'s questions."""
    answers = [
        "other",  # provider
        account.host,
        "plain",  # security: the test server is on this machine, without TLS
        str(account.port),
        account.user,
        "env",  # password source
        "",  # TRIAGE_PASSWORD
        buyer.buyer.domain,  # own domains
        "Grace Novak, Grace",  # own names
        "",  # partner prefix
        "",  # generic bucket
        "",  # keep folders
        "y",  # write it
    ]
    return "\n".join(answers) + "\n"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME: the config and the state go where they go for a real user."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("CONFIG", "STATE", "DATA", "CACHE"):
        monkeypatch.setenv(f"XDG_{name}_HOME", str(tmp_path / name.lower()))
    monkeypatch.delenv("TRIAGE_CONFIG", raising=False)
    monkeypatch.delenv("TRIAGE_PASSWORD", raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def buyer() -> sample.SampleMailbox:
    """A small sample buyer (a few weeks of history), so training takes a second."""
    return sample.build(seed=3, weeks=6)


def run(args: list[str], input: str | None = None) -> Result:
    return CliRunner().invoke(cli, args, input=input)


def test_the_readme_quick_start(
    imap_account: ImapAccount,
    buyer: sample.SampleMailbox,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(home)  # files the commands write (digest.html) land here
    seed_history(imap_account, buyer)
    imap_account.server.seed(imap_account.user, "INBOX", [m.data for m in buyer.new_week[:20]])
    commands = readme_commands()
    assert [w[:2] for w in commands if w[0] == "triage"][:2] == [
        ["triage", "init"],
        ["triage", "check"],
    ]
    ran: list[str] = []
    for words in commands:
        line = shlex.join(words)
        if words[:2] == ["read", "-rs"] and words[3:] == ["&&", "export", words[2]]:
            monkeypatch.setenv(words[2], imap_account.password)  # what the user types
            continue
        if words[0] in SKIPPED:
            if words[0] == "cp":
                assert (ROOT / words[1]).is_file(), f"the README copies a missing file: {line}"
            continue
        assert words[0] == "triage", f"the quick start has a line this test does not know: {line}"
        args = words[1:]
        if args == ["run"] or (args[:1] == ["run"] and not {"--once", "--dry-run"} & set(args)):
            continue  # stays up until stopped: the service section's job, tested elsewhere
        answers = interactive_answers(imap_account, buyer) if args[:1] == ["init"] else None
        result = run(args, input=answers)
        assert result.exit_code == 0, f"{line}:\n{result.output}"
        for key, fragments in EXPECTED.items():
            if " ".join(args).startswith(key):
                for fragment in fragments:
                    assert fragment in result.output, f"{line}: no {fragment!r} in\n{result.output}"
        ran.append(" ".join(args[:2]))
    assert (home / "digest.html").read_text().startswith("<!DOCTYPE html>")
    assert {"init", "check", "train", "run --dry-run", "run --once", "status", "digest"} <= {
        key for key in EXPECTED if any(r.startswith(key) for r in ran)
    }
    config = home / "config" / "triage" / "config.toml"
    assert config.is_file() and (home / "state" / "triage" / "triage.db").is_file()
    assert imap_account.password not in config.read_text()

    # After the quick start, new mail is filed: the loop works from that config as it is.
    before = set(where_is(imap_account))
    imap_account.server.seed(imap_account.user, "INBOX", [m.data for m in buyer.new_week[20:]])
    result = run(["run", "--once"])
    assert result.exit_code == 0, result.output
    assert re.search(r"Run 2: \d+ new messages, [1-9]\d* filed", result.output), result.output
    places = where_is(imap_account)
    assert len(places) == len(before) + len(buyer.new_week) - 20
    assert any(folder.startswith("Vendors/") for folder in places.values())


def init_flags(account: ImapAccount, *secret: str) -> list[str]:
    """`triage init` for the test server without questions, with a secret source's flags."""
    return [
        "init", "--non-interactive", "--host", account.host, "--port", str(account.port),
        "--security", "plain", "--user", account.user, *secret,
    ]  # fmt: skip


def test_init_tests_the_connection_and_keeps_the_config_when_it_fails(
    imap_account: ImapAccount, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    imap_account.server.seed(imap_account.user, "Vendors/Acme", [])
    base = init_flags(imap_account, "--password-env", "TEST_IMAP_PASSWORD")
    monkeypatch.setenv("TEST_IMAP_PASSWORD", "Not-the-password-77")
    result = run(base)
    assert result.exit_code == 3
    assert f"login as {imap_account.user} failed" in result.output
    assert "The config is saved" in result.output and "triage check" in result.output
    assert "Not-the-password-77" not in result.output
    assert (home / "config" / "triage" / "config.toml").is_file()

    monkeypatch.setenv("TEST_IMAP_PASSWORD", imap_account.password)
    result = run(base)
    assert result.exit_code == 2 and "--force" in result.output
    result = run([*base, "--force"])
    assert result.exit_code == 0, result.output
    assert f"Connected: {imap_account.host}:{imap_account.port} as {imap_account.user}" in (
        result.output
    )
    assert "Vendors/Acme" in result.output and "partner" in result.output
    assert "Next: `triage train`" in result.output
    assert imap_account.password not in result.output


def test_init_with_an_oauth2_token_command(
    imap_account: ImapAccount, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = home / "token.py"
    script.write_text('import os\nprint(os.environ["TEST_IMAP_TOKEN"])\n')
    monkeypatch.setenv("TEST_IMAP_TOKEN", imap_account.oauth_token)
    result = run(init_flags(imap_account, "--oauth2-token-command", f"{sys.executable} {script}"))
    assert result.exit_code == 0, result.output
    assert "Connected: " in result.output
    assert imap_account.oauth_token not in result.output

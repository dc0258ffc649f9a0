"""Secrets and files: what triage writes is private, what it loads is its own, TLS stays on.

- State files (the database with its -wal/-shm, models, sidecars, lock files) are created 0600
  and their directories 0700, whatever the umask.
- A config others can change draws a warning on every command; one that is readable and holds a
  password key is refused with both problems named (never the password).
- TLS verification has no off switch: a misspelt or made-up key is refused, a wrong type is
  refused, a broken ca_file is an error (never "trust everything"), and the one explicit
  weakening, allow_plaintext, is logged each time triage connects.
- Only model files triage wrote are loaded: a changed byte, a model swapped for another, a
  renamed pair or a missing sidecar is refused through the CLI with exit code 4. The sidecar's
  sha256 cannot stop someone who rewrites both files; the last test shows where that limit is.

The same loop against a real Dovecot, checking that no password or token leaks into any output,
file or exception, is tests/imap/test_secrets_loop.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import pickle
import shutil
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from triage import sample
from triage.cli import cli
from triage.errors import TLSError
from triage.mailbox.imap import ImapMailbox
from triage.store import AccountLock, Store

posix_only = pytest.mark.skipif(os.name != "posix", reason="mode bits are POSIX-only")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


# --- a small sample mailbox with two trained models (trained once, copied per test) -----------


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Mail/ (the sample buyer's Maildir with a new week in the inbox) and state/ with two
    models trained on it, the second in use."""
    root = tmp_path_factory.mktemp("pristine")
    buyer = sample.build(seed=4, weeks=6)
    sample.write_maildir(dataclasses.replace(buyer, new_week=()), root / "Mail")
    # Training is deterministic: the second model differs from the first only because the
    # buyer's identity does (a swap of identical bytes would be no swap at all).
    for domains in ([buyer.buyer.domain], [buyer.buyer.domain, "other.example"]):
        result = invoke(write_maildir_config(root, *domains), "train")
        assert result.exit_code == 0, result.output
    return root


def write_maildir_config(root: Path, *domains: str) -> Path:
    path = root / "config.toml"
    path.write_text(
        f'[triage]\nstate_dir = "{root / "state"}"\n'
        f'[[accounts]]\nname = "demo"\nbackend = "maildir"\npath = "{root / "Mail"}"\n'
        f"own_domains = {json.dumps(list(domains or ['example.com']))}\n"
    )
    path.chmod(0o600)
    return path


@pytest.fixture
def copy(pristine: Path, tmp_path: Path) -> Path:
    """A private copy of the pristine mailbox and state; returns its config file."""
    shutil.copytree(pristine / "Mail", tmp_path / "Mail")
    shutil.copytree(pristine / "state", tmp_path / "state")
    text = (pristine / "config.toml").read_text().replace(str(pristine), str(tmp_path))
    config = tmp_path / "config.toml"
    config.write_text(text)
    config.chmod(0o600)
    return config


def models(config: Path) -> tuple[Path, Path]:
    """(older, current) model files of the copy."""
    directory = config.parent / "state" / "models" / "demo"
    current = directory / (directory / "current").read_text().strip()
    older = [p for p in sorted(directory.glob("model-*.joblib")) if p != current]
    return older[-1], current


# --- state files are private -------------------------------------------------------------------


@posix_only
@pytest.mark.parametrize("mask", [0o022, 0o000], ids=["umask-022", "umask-000"])
def test_state_files_are_created_private(pristine: Path, tmp_path: Path, mask: int) -> None:
    shutil.copytree(pristine / "Mail", tmp_path / "Mail")
    config = write_maildir_config(tmp_path)
    state = tmp_path / "state"
    with umask(mask):
        for args in (["train"], ["run", "--once"], ["status"]):
            result = invoke(config, *args)
            assert result.exit_code == 0, result.output
        # While the database is open it has its WAL and shared-memory files: SQLite gives them
        # the database's mode.
        with Store.open(state / "triage.db") as store:
            store.start_run("demo", "test")
            wal, shm = state / "triage.db-wal", state / "triage.db-shm"
            assert wal.exists() and shm.exists()
            assert mode(wal) == mode(shm) == 0o600
        with AccountLock(state / "locks", "other"):
            assert mode(state / "locks" / "other.lock") == 0o600

    # Every file: the database, models and sidecars, the "current" pointer, locks.
    data_files = [p for p in state.rglob("*") if p.is_file()]
    assert {p.name for p in data_files} >= {"triage.db", "current", "other.lock"}
    assert len([p for p in data_files if p.suffix == ".joblib"]) == 1
    for path in data_files:
        assert mode(path) == 0o600, f"{path.relative_to(tmp_path)} is {mode(path):04o}"
    directories = [state, *(p for p in state.rglob("*") if p.is_dir())]
    assert {p.name for p in directories} >= {"state", "models", "demo", "locks"}
    for path in directories:
        assert mode(path) == 0o700, f"{path.relative_to(tmp_path)} is {mode(path):04o}"


# --- config permissions ------------------------------------------------------------------------


@posix_only
def test_a_config_others_may_change_draws_a_warning_on_every_command(copy: Path) -> None:
    copy.chmod(0o664)
    for _ in range(2):
        result = invoke(copy, "-q", "status")
        assert result.exit_code == 0, result.output
        assert f"{copy}: other users may change this file (mode 0664)" in result.stderr
        assert f"chmod 600 {copy}" in result.stderr
    copy.chmod(0o644)  # readable is fine: the file holds no secret (a password key is refused)
    result = invoke(copy, "status")
    assert result.exit_code == 0 and "other users" not in result.stderr


@posix_only
def test_a_readable_config_with_a_password_is_refused_naming_both_problems(copy: Path) -> None:
    password = "Hunter2-readable-secret"
    copy.write_text(copy.read_text() + f'password = "{password}"\n')
    copy.chmod(0o644)
    result = invoke(copy, "check")
    assert result.exit_code == 2
    assert "accounts[0].password: passwords are not stored in the config" in result.output
    assert "password_env, password_command or password_keyring" in result.output
    assert "readable by other users (mode 0644)" in result.output
    assert f"chmod 600 {copy}" in result.output
    assert password not in result.output


# --- TLS cannot be switched off by accident ----------------------------------------------------


def imap_config(tmp_path: Path, extra: str, host: str = "imap.example.com") -> Path:
    path = tmp_path / "imap.toml"
    path.write_text(
        '[[accounts]]\nname = "work"\nbackend = "imap"\n'
        f'host = "{host}"\nuser = "jane@example.com"\npassword_env = "TRIAGE_TEST_PASSWORD"\n'
        + extra
    )
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    "line",
    [
        "tls_verify = false",
        "verify_tls = false",
        "ssl_verify = false",
        "verify = false",
        "insecure = true",
        "check_hostname = false",
        "verify_certificate = false",
    ],
)
def test_no_key_turns_certificate_checks_off(tmp_path: Path, line: str) -> None:
    result = invoke(imap_config(tmp_path, line + "\n"), "check")
    assert result.exit_code == 2
    assert f'unknown key "{line.split()[0]}"' in result.output


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('allow_plaintext = "true"', "allow_plaintext: expected a boolean"),
        ("allow_plaintext = 1", "allow_plaintext: expected a boolean"),
        ('security = "none"', 'security: must be one of "tls", "starttls", "plain"'),
        ('security = "ssl"', 'security: must be one of "tls", "starttls", "plain"'),
        ('security = "plain"', '"plain" would send the password unencrypted'),
    ],
)
def test_a_wrong_value_never_weakens_tls(tmp_path: Path, line: str, message: str) -> None:
    result = invoke(imap_config(tmp_path, line + "\n"), "check")
    assert result.exit_code == 2
    assert message in result.output


def test_certificates_and_host_names_are_always_checked(tmp_path: Path) -> None:
    context = ImapMailbox("imap.example.com", "u", lambda: "pw").ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    # A ca_file that cannot be read is an error, not a reason to trust anything.
    broken = tmp_path / "ca.pem"
    broken.write_text("not a certificate\n")
    mailbox = ImapMailbox("imap.example.com", "u", lambda: "pw", ca_file=broken)
    with pytest.raises(TLSError, match=r"ca_file .*cannot load it"):
        mailbox.ssl_context()


def test_allow_plaintext_is_logged_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIAGE_TEST_PASSWORD", "not-used")
    config = imap_config(
        tmp_path,
        'security = "plain"\nport = 143\nallow_plaintext = true\n',
        host="no-such-host.invalid",
    )
    for _ in range(2):
        # Even -q and log_level cannot hide it; the host does not exist, so the run stops at
        # connecting, after the warning.
        result = invoke(config, "-q", "check")
        assert result.exit_code == 3
        assert "plaintext IMAP (allow_plaintext = true)" in result.stderr
        assert "the password is sent unencrypted" in result.stderr


# --- only triage's own model files are loaded --------------------------------------------------


def assert_refused(config: Path, *fragments: str) -> None:
    """`run --once` and `explain` both stop with exit code 4 and a message with `fragments`."""
    message = next((config.parent / "Mail").rglob("cur/*"))
    for args in (["run", "--once"], ["explain", str(message)]):
        result = invoke(config, *args)
        assert result.exit_code == 4, (args, result.output)
        assert result.output.startswith("triage: model ")
        for fragment in (*fragments, "triage train"):
            assert fragment in result.output, (args, result.output)


def test_an_untouched_model_loads(copy: Path) -> None:
    message = next((copy.parent / "Mail").rglob("cur/*"))
    result = invoke(copy, "explain", str(message))
    assert result.exit_code == 0, result.output
    assert "Predicted:" in result.output


def test_a_changed_byte_is_refused(copy: Path) -> None:
    _, current = models(copy)
    data = bytearray(current.read_bytes())
    data[len(data) // 3] ^= 0x40
    current.write_bytes(bytes(data))
    assert_refused(copy, "does not match the sha256", "changed or replaced")


def test_a_model_swapped_for_another_is_refused(copy: Path) -> None:
    older, current = models(copy)
    assert older.read_bytes() != current.read_bytes()
    shutil.copyfile(older, current)  # a genuine triage model, but not the one the sidecar names
    assert_refused(copy, "does not match the sha256")


def test_a_renamed_pair_is_refused(copy: Path) -> None:
    older, current = models(copy)
    shutil.copyfile(older, current)
    shutil.copyfile(older.with_suffix(".json"), current.with_suffix(".json"))
    assert_refused(copy, f"was written for '{older.name}', not '{current.name}'")


def test_a_missing_sidecar_is_refused(copy: Path) -> None:
    _, current = models(copy)
    current.with_suffix(".json").unlink()
    assert_refused(copy, "has no sidecar")


def test_a_sidecar_from_another_scikit_learn_is_refused(copy: Path) -> None:
    _, current = models(copy)
    side = current.with_suffix(".json")
    meta = json.loads(side.read_text())
    meta["sklearn_version"] = "0.24.2"
    side.write_text(json.dumps(meta))
    assert_refused(copy, "scikit-learn 0.24.2")


def test_the_limit_a_forged_sidecar_for_a_foreign_pickle(copy: Path) -> None:
    """Whoever rewrites the model AND its sidecar gets their pickle unpickled: the sha256 guards
    against corruption and swaps, not against someone with write access to the state dir (who
    could as well change the user's shell profile; hence the 0700 directories). What triage
    still does is refuse to use an object that is not a triage model."""
    _, current = models(copy)
    current.write_bytes(pickle.dumps({"not": "a model"}))
    side = current.with_suffix(".json")
    meta = json.loads(side.read_text())
    meta["sha256"] = hashlib.sha256(current.read_bytes()).hexdigest()
    side.write_text(json.dumps(meta))
    message = next((copy.parent / "Mail").rglob("cur/*"))
    result = invoke(copy, "explain", str(message))
    assert result.exit_code == 4
    assert "is not a triage model" in result.output

"""Secrets never leak: the whole loop at debug log level, against a real Dovecot.

One mailbox, two accounts in the config: one logs in with a password (LOGIN), one with an
OAuth2 token (XOAUTH2); both secrets are unique random strings. check, train, run (dry run,
backfill, once), explain over IMAP, undo, status, model list and retrain run as the real
console command with -v (text and JSON logs), then logins that fail (wrong password, wrong
token, connection refused) run both as commands and in-process. Neither secret may appear,
raw or base64-encoded (XOAUTH2 sends base64), in any output, in any file triage wrote (config,
state database with its WAL, models, sidecars, lock files, anything else under HOME), nor in
the text of any exception. imapclient's own wire log is switched on in-process too: it must
redact LOGIN and AUTHENTICATE itself, and the CLI must never switch it on.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from dovecot import DovecotServer, ImapAccount
from helpers import seed_history

from triage import engine, sample
from triage.config import load_config
from triage.errors import MailboxError, TriageError


@dataclasses.dataclass(frozen=True)
class Secrets:
    password: str
    token: str
    wrong_password: str
    wrong_token: str

    def all(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def needles(secret: str) -> list[bytes]:
    """What would betray `secret`: its random core as is, and base64 of text that contains it
    at any of the three byte alignments (only the groups made of the core alone are kept)."""
    core = secret.split("-", 1)[1][:32].encode()  # the random part only
    found = [core]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + core)
        found.append(encoded[4:-4])
    return found


def assert_clean(label: str, data: bytes | str, keys: Secrets) -> None:
    blob = data.encode("utf-8", "replace") if isinstance(data, str) else data
    for name, secret in keys.all().items():
        for needle in needles(secret):
            assert needle not in blob, f"{label} contains the {name} (as {needle[:12]!r}...)"


def unique(kind: str) -> str:
    # A space and a double quote exercise LOGIN's quoting: an escaped form still holds the core.
    return f'{kind}-{secrets.token_hex(16)} "q'


@pytest.fixture(scope="module")
def buyer() -> sample.SampleMailbox:
    return sample.build(seed=3, weeks=6)


@pytest.fixture
def keys() -> Secrets:
    # OAuth2 access tokens are URL-safe text; "-" is kept out so the prefix splits cleanly.
    return Secrets(
        password=unique("pw"),
        token=f"tok-{secrets.token_urlsafe(24).replace('-', 'x')}",
        wrong_password=unique("badpw"),
        wrong_token=f"badtok-{secrets.token_urlsafe(24).replace('-', 'x')}",
    )


@pytest.fixture
def mailbox(dovecot: DovecotServer, keys: Secrets, buyer: sample.SampleMailbox) -> ImapAccount:
    name = f"leak-{secrets.token_hex(4)}"
    account = dovecot.account(
        dovecot.add_user(name, password=keys.password, oauth_token=keys.token)
    )
    seed_history(account, buyer)
    account.server.seed(account.user, "INBOX", [m.data for m in buyer.new_week])
    return account


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def write_config(home: Path, account: ImapAccount, buyer: sample.SampleMailbox, port: int) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    token_script = home / "token.py"
    token_script.write_text('import os\nprint(os.environ["TRIAGE_TEST_TOKEN"])\n')
    common = (
        'backend = "imap"\n'
        f'host = "{account.host}"\nport = {port}\nuser = "{account.user}"\n'
        'security = "plain"\n'
        f'own_domains = ["{buyer.buyer.domain}"]\nown_addresses = ["{buyer.buyer.address}"]\n'
    )
    path = home / ".config" / "triage" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(
        f'[triage]\nstate_dir = "{home / "state"}"\nlog_level = "debug"\n'
        "[run]\nbatch_size = 50\n"
        '[[accounts]]\nname = "pw"\npassword_env = "TRIAGE_TEST_PASSWORD"\n'
        + common
        + '[[accounts]]\nname = "tok"\n'
        + f'oauth2_token_command = "{sys.executable} {token_script}"\n'
        + common
    )
    return path


def environment(home: Path, password: str, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIAGE_", "XDG_"))}
    env.update(
        HOME=str(home),
        TRIAGE_TEST_PASSWORD=password,
        TRIAGE_TEST_TOKEN=token,
        TRIAGE_CONFIG=str(home / ".config" / "triage" / "config.toml"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def triage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "triage", *args],
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )


def files_under(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


@pytest.mark.slow
def test_the_whole_loop_at_debug_level_leaks_no_secret(
    mailbox: ImapAccount, buyer: sample.SampleMailbox, home: Path, keys: Secrets
) -> None:
    config = write_config(home, mailbox, buyer, mailbox.port)
    env = environment(home, keys.password, keys.token)
    loop = [
        ("-v", "check", "-a", "pw"),
        ("-v", "check", "-a", "tok"),
        ("-v", "--log-format", "json", "check", "-a", "tok"),
        ("-v", "train", "-a", "pw"),
        ("-v", "train", "-a", "tok"),
        ("-v", "run", "--dry-run", "--backfill", "-a", "pw"),
        ("-v", "run", "--once", "--backfill", "-a", "pw"),
        ("-v", "--log-format", "json", "run", "--once", "-a", "tok"),
        ("-v", "explain", "--folder", "Vendors/Generic", "--uid", "1", "-a", "tok"),
        ("-v", "status"),
        ("-v", "undo", "-a", "pw"),
        ("-v", "model", "list", "-a", "tok"),
        ("-v", "retrain", "-a", "tok"),
    ]
    outputs: list[tuple[str, bytes]] = []
    for args in loop:
        result = triage(env, *args)
        label = " ".join(args)
        assert result.returncode == 0, f"{label}: {result.stderr.decode()[-2000:]}"
        outputs += [(f"{label} stdout", result.stdout), (f"{label} stderr", result.stderr)]
    # Debug logging was on, and did reach stderr, but never imapclient's wire log.
    text = b"".join(out for _, out in outputs)
    assert b"DEBUG triage." in text and b'"level": "debug"' in text
    assert b"imapclient" not in text
    assert b"Run " in text  # the loop did file mail

    # The same commands failing: a wrong password, a wrong token, a server that is not there.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    wrong = environment(home, keys.wrong_password, keys.wrong_token)
    for args, env_used, code in [
        (("-v", "check", "-a", "pw"), wrong, 3),
        (("-v", "check", "-a", "tok"), wrong, 3),
        (("-v", "run", "--once", "-a", "tok"), wrong, 3),
        (("-v", "train", "-a", "pw"), wrong, 3),
    ]:
        result = triage(env_used, *args)
        label = "wrong secret: " + " ".join(args)
        assert result.returncode == code, f"{label}: {result.stderr.decode()[-2000:]}"
        assert b"failed" in result.stderr
        outputs += [(f"{label} stdout", result.stdout), (f"{label} stderr", result.stderr)]
    refused_config = config.with_name("refused.toml")
    refused_config.write_text(
        config.read_text().replace(f"port = {mailbox.port}", f"port = {closed_port}")
    )
    for account in ("pw", "tok"):
        result = triage(env, "-v", "--config", str(refused_config), "check", "-a", account)
        assert result.returncode == 3 and b"connection refused" in result.stderr
        outputs += [(f"refused {account}", result.stdout + result.stderr)]

    for label, data in outputs:
        assert_clean(label, data, keys)

    # Every file triage (or anything it ran) wrote under HOME: config, database, models...
    written = list(files_under(home))
    names = {p.name for p in written}
    assert {"triage.db", "pw.lock", "tok.lock", "current"} <= names
    assert any(p.suffix == ".joblib" for p in written) and any(p.suffix == ".json" for p in written)
    for path in written:
        assert_clean(str(path.relative_to(home)), path.read_bytes(), keys)
    # The database as text too (its pages may hold compressed or overflowed rows).
    with sqlite3.connect(home / "state" / "triage.db") as db:
        assert_clean("triage.db dump", "\n".join(db.iterdump()), keys)


def test_failures_in_process_leak_no_secret_even_with_imapclient_wire_log(
    mailbox: ImapAccount,
    buyer: sample.SampleMailbox,
    home: Path,
    keys: Secrets,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # imapclient's protocol log is on here (the CLI never does this): LOGIN and AUTHENTICATE
    # lines must be redacted by imapclient, and the XOAUTH2 response is sent unlogged.
    caplog.set_level(logging.DEBUG)
    for name in ("imapclient", "imapclient.imaplib", "triage"):
        caplog.set_level(logging.DEBUG, logger=name)
    config = load_config(write_config(home, mailbox, buyer, mailbox.port))
    monkeypatch.setenv("TRIAGE_TEST_PASSWORD", keys.password)
    monkeypatch.setenv("TRIAGE_TEST_TOKEN", keys.token)
    for name in ("pw", "tok"):
        report = engine.check(config.account(name), config.run)
        assert report.capabilities["MOVE"]
    engine.run_once(config, config.account("tok"))  # the first run: syncs, files nothing
    wire = caplog.text
    assert "AUTHENTICATE **REDACTED**" in wire and "LOGIN **REDACTED**" in wire

    failures: list[BaseException] = []
    monkeypatch.setenv("TRIAGE_TEST_PASSWORD", keys.wrong_password)
    monkeypatch.setenv("TRIAGE_TEST_TOKEN", keys.wrong_token)
    for name in ("pw", "tok"):
        with pytest.raises(MailboxError, match="failed") as info:
            engine.check(config.account(name), config.run)
        failures.append(info.value)
        with pytest.raises(MailboxError) as info:
            engine.run_once(config, config.account(name))
        failures.append(info.value)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    monkeypatch.setenv("TRIAGE_TEST_PASSWORD", keys.password)
    monkeypatch.setenv("TRIAGE_TEST_TOKEN", keys.token)
    refused = load_config(write_config(home / "refused", mailbox, buyer, closed))
    for name in ("pw", "tok"):
        with pytest.raises(MailboxError, match="connection refused") as info:
            engine.check(refused.account(name), refused.run)
        failures.append(info.value)

    for exc in failures:
        assert isinstance(exc, TriageError)
        text = "".join(traceback.format_exception(exc)) + repr(exc) + repr(vars(exc))
        assert_clean(f"exception {exc!r}", text, keys)
    assert_clean("log records", caplog.text, keys)
    for record in caplog.records:
        assert_clean("log record args", repr(record.args) + repr(record.msg), keys)

"""`triage check` against real Dovecot servers: success, and each failure with its own message."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from dovecot import DovecotServer, ImapAccount

from triage.cli import cli


def config_for(
    tmp_path: Path, *, host: str, port: int, user: str, security: str, extra: str = ""
) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        "[[accounts]]\n"
        'name = "work"\n'
        'backend = "imap"\n'
        f'host = "{host}"\nport = {port}\nuser = "{user}"\nsecurity = "{security}"\n'
        'password_env = "TRIAGE_TEST_PASSWORD"\n'
        'own_domains = ["corp.example"]\n' + extra
    )
    return path


def run_check(config: Path, password: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setenv("TRIAGE_TEST_PASSWORD", password)
    result = CliRunner().invoke(cli, ["--config", str(config), "check"])
    return result.exit_code, result.output


def test_check_lists_capabilities_and_roles(
    imap_account: ImapAccount, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for folder in ("Vendors/Acme", "Vendors/Generic", "Archive"):
        imap_account.server.seed(imap_account.user, folder, [])
    config = config_for(
        tmp_path,
        host=imap_account.host,
        port=imap_account.port,
        user=imap_account.user,
        security="plain",
    )
    code, output = run_check(config, imap_account.password, monkeypatch)
    assert code == 0, output
    assert f"as {imap_account.user} (plain)" in output
    assert "MOVE yes, IDLE yes, UIDPLUS yes, CONDSTORE yes, SPECIAL-USE yes" in output
    roles = {
        line.split()[0]: line.split()[1] for line in output.splitlines() if line.startswith("  ")
    }
    assert roles["INBOX"] == "inbox"
    assert roles["Vendors/Acme"] == "partner"
    assert roles["Vendors/Generic"] == "generic"
    assert roles["Archive"] == "keep"
    assert roles["Sent"] == roles["Trash"] == roles["Junk"] == "ignored"
    assert imap_account.password not in output


def test_check_wrong_password(
    imap_account: ImapAccount, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_for(
        tmp_path,
        host=imap_account.host,
        port=imap_account.port,
        user=imap_account.user,
        security="plain",
    )
    code, output = run_check(config, "not-the-Password-99", monkeypatch)
    assert code == 3
    assert output.count("\n") == 1
    assert f"login as {imap_account.user} failed" in output
    assert "not-the-Password-99" not in output


def test_check_certificate_failure(
    dovecot_tls: DovecotServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = dovecot_tls.new_account("checktls")
    config = config_for(
        tmp_path, host="localhost", port=dovecot_tls.imaps_port, user=account.user, security="tls"
    )
    code, output = run_check(config, account.password, monkeypatch)
    assert code == 3
    assert "certificate was rejected" in output and "ca_file" in output
    # With the test CA trusted the same server is fine.
    trusted = config_for(
        tmp_path,
        host="localhost",
        port=dovecot_tls.imaps_port,
        user=account.user,
        security="tls",
        extra=f'ca_file = "{dovecot_tls.cert_file}"\n',
    )
    code, output = run_check(trusted, account.password, monkeypatch)
    assert code == 0, output


def test_check_host_unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = config_for(tmp_path, host="127.0.0.1", port=port, user="u", security="plain")
    code, output = run_check(config, "pw", monkeypatch)
    assert code == 3
    assert "connection refused" in output


def test_check_unknown_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = config_for(tmp_path, host="no-such-host.invalid", port=993, user="u", security="tls")
    code, output = run_check(config, "pw", monkeypatch)
    assert code == 3
    assert "host not found" in output

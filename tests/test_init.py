"""`triage init`: the config it writes, its questions, its flags and its refusals (no server).

Against a real Dovecot (the connection test, and the README's quick start) see
tests/imap/test_quickstart.py.
"""

from __future__ import annotations

import os
import stat
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from triage import wizard
from triage.cli import cli
from triage.config import load_config

ROOT = Path(__file__).resolve().parent.parent

BASE = [
    "--non-interactive",
    "--host",
    "imap.acme-corp.example",
    "--user",
    "jane@acme-corp.example",
    "--no-test",
]


def init(config: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), "init", *args], input=input)


def comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("#")]


def test_the_template_is_the_documented_example() -> None:
    shipped = wizard.template()
    assert shipped == (ROOT / "config.example.toml").read_text(encoding="utf-8"), (
        "config.example.toml and triage/config.example.toml differ: the top-level file is a "
        "symlink to the packaged one; restore it with "
        "`ln -sf triage/config.example.toml config.example.toml`"
    )
    assert shipped == (ROOT / "triage" / "config.example.toml").read_text(encoding="utf-8")


def test_non_interactive_writes_a_valid_private_config(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "config.toml"
    result = init(
        path,
        *BASE,
        "--port",
        "1993",
        "--password-command",
        "pass show mail/acme",
        "--own-domain",
        "acme-corp.example",
        "--own-domain",
        "acme.example",
        "--own-name",
        "Jane",
        "--own-name",
        "Jane Doe",
        "--partner-prefix",
        "Suppliers/",
        "--generic-folder",
        "Suppliers/Other",
        "--keep-folder",
        "Archive",
        "--keep-folder",
        "Team",
        "--name",
        "acme",
        "--state-dir",
        str(tmp_path / "state"),
    )
    assert result.exit_code == 0, result.output
    assert f"Wrote {path}" in result.output
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    config = load_config(path)
    account = config.account()
    assert (account.name, account.host, account.port, account.security) == (
        "acme",
        "imap.acme-corp.example",
        1993,
        "tls",
    )
    assert account.user == "jane@acme-corp.example"
    assert account.credentials is not None
    assert (account.credentials.kind, account.credentials.source) == (
        "password_command",
        "pass show mail/acme",
    )
    assert account.own_domains == ("acme-corp.example", "acme.example")
    assert account.own_names == ("Jane", "Jane Doe")
    assert account.folders.partner_prefix == "Suppliers/"
    assert account.folders.generic == "Suppliers/Other"
    assert account.folders.keep == ("Archive", "Team")
    assert config.state_dir == tmp_path / "state"
    # The documented example, every comment kept, only the answers changed.
    text = path.read_text()
    template = wizard.template()
    assert [c for c in comments(text) if not c.lstrip("# ").startswith("password_")] == [
        c for c in comments(template) if not c.lstrip("# ").startswith("password_")
    ]
    assert len(text.splitlines()) == len(template.splitlines())
    assert "# password_env = " in text and "\npassword_command = " in text


@pytest.mark.parametrize(
    ("flag", "value", "kind"),
    [
        ("--password-env", "ACME_PW", "password_env"),
        ("--password-command", "pass show 'mail/acme corp'", "password_command"),
        ("--keyring", "triage-acme", "password_keyring"),
        ("--oauth2-token-command", "oama access jane@acme-corp.example", "oauth2_token_command"),
    ],
)
def test_each_credential_source(tmp_path: Path, flag: str, value: str, kind: str) -> None:
    path = tmp_path / "config.toml"
    result = init(path, *BASE, flag, value)
    assert result.exit_code == 0, result.output
    credentials = load_config(path).account().credentials
    assert credentials is not None and (credentials.kind, credentials.source) == (kind, value)
    active = [
        line.split(" = ")[0]
        for line in path.read_text().splitlines()
        if line.startswith(("password_", "oauth2_"))
    ]
    assert active == [kind]  # the other three stay in the file, commented out, as examples
    if kind == "password_keyring":
        assert f"keyring set {value} jane@acme-corp.example" in result.output


def test_defaults_without_flags(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    result = init(path, *BASE)
    assert result.exit_code == 0, result.output
    account = load_config(path).account()
    assert (account.name, account.port, account.security) == ("work", 993, "tls")
    assert account.credentials is not None
    assert (account.credentials.kind, account.credentials.source) == (
        "password_env",
        "TRIAGE_PASSWORD",
    )
    assert account.own_domains == ("acme-corp.example",)  # the login's domain
    assert account.own_names == ()
    assert account.folders.keep == ("Archive",)
    result = init(tmp_path / "starttls.toml", *BASE, "--security", "starttls")
    assert result.exit_code == 0, result.output
    assert load_config(tmp_path / "starttls.toml").account().port == 143


@pytest.mark.parametrize(
    ("provider", "host", "keep"),
    [
        ("gmail", "imap.gmail.com", ()),
        ("fastmail", "imap.fastmail.com", ("Archive",)),
        ("outlook", "outlook.office365.com", ("Archive",)),
        ("microsoft365", "outlook.office365.com", ("Archive",)),
    ],
)
def test_provider_presets(tmp_path: Path, provider: str, host: str, keep: tuple[str, ...]) -> None:
    path = tmp_path / "config.toml"
    args = ["--non-interactive", "--no-test", "--provider", provider, "--user", "jo@gmail.com"]
    if host.startswith("outlook"):
        result = init(path, *args)
        assert result.exit_code == 2 and "--oauth2-token-command" in result.output
        assert not path.exists()
        args += ["--oauth2-token-command", "token-helper jo"]
    result = init(path, *args)
    assert result.exit_code == 0, result.output
    account = load_config(path).account()
    assert (account.host, account.port, account.security) == (host, 993, "tls")
    assert account.folders.keep == keep
    assert account.own_domains == ()  # a public mail domain is nobody's own organisation


def test_interactive(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    answers = [
        "other",  # provider
        "mail.acme-corp.example",  # server
        "starttls",  # security
        "",  # port: the default for starttls (143)
        "jane@acme-corp.example",  # login
        "keyring",  # password source
        "",  # keyring service: triage
        "acme-corp.example, acme.example",  # own domains
        "Jane, Jane Doe",  # own names
        "",  # partner prefix: Vendors/
        "Vendors/Misc",  # generic bucket
        "Archive, Team",  # keep
        "y",  # write it
    ]
    result = init(path, "--no-test", input="\n".join(answers) + "\n")
    assert result.exit_code == 0, result.output
    assert "Password source (env, command, keyring, oauth2) [env]:" in result.output
    account = load_config(path).account()
    assert (account.host, account.port, account.security) == (
        "mail.acme-corp.example",
        143,
        "starttls",
    )
    assert account.credentials is not None
    assert (account.credentials.kind, account.credentials.source) == ("password_keyring", "triage")
    assert account.own_domains == ("acme-corp.example", "acme.example")
    assert account.own_names == ("Jane", "Jane Doe")
    assert account.folders.generic == "Vendors/Misc"
    assert account.folders.keep == ("Archive", "Team")


def test_interactive_with_a_preset_asks_less(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    answers = ["gmail", "jane@gmail.com", "", "", "", "", "", "", "", "y"]
    result = init(path, "--no-test", input="\n".join(answers) + "\n")
    assert result.exit_code == 0, result.output
    assert "IMAP server:" not in result.output and "app password" in result.output
    account = load_config(path).account()
    assert (account.host, account.port, account.folders.keep) == ("imap.gmail.com", 993, ())


def test_interactive_answer_no_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    result = init(path, "--no-test", *BASE[1:5], input="\n" * 8 + "n\n")
    assert result.exit_code == 1  # click's Abort
    assert not path.exists()


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("# mine\n")
    result = init(path, *BASE)
    assert result.exit_code == 2
    assert "already exists" in result.output and "--force" in result.output
    assert path.read_text() == "# mine\n"
    # Refused before any question is asked.
    result = init(path, "--no-test", input="")
    assert result.exit_code == 2 and "Provider" not in result.output
    result = init(path, *BASE, "--force")
    assert result.exit_code == 0, result.output
    assert load_config(path).account().host == "imap.acme-corp.example"


def test_a_bad_answer_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    result = init(path, *BASE, "--own-domain", "not a domain")
    assert result.exit_code == 2
    assert "(not written): accounts[0].own_domains[0]" in result.output
    assert not path.exists()
    result = init(path, *BASE, "--security", "plain")  # plain to a remote host is refused
    assert result.exit_code == 2 and "unencrypted" in result.output
    assert not path.exists()


def test_usage_errors(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    result = init(path, "--non-interactive", "--no-test")
    assert result.exit_code == 2
    assert "--non-interactive needs --host, --user" in result.output
    result = init(path, *BASE, "--password-env", "A", "--keyring", "b")
    assert result.exit_code == 2 and "give only one password or token source" in result.output
    assert not path.exists()


def test_the_config_goes_where_other_commands_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "from-env.toml"
    monkeypatch.setenv("TRIAGE_CONFIG", str(path))
    result = CliRunner().invoke(cli, ["init", *BASE])
    assert result.exit_code == 0, result.output
    assert path.exists() and "--config" not in result.output
    monkeypatch.delenv("TRIAGE_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    result = CliRunner().invoke(cli, ["init", *BASE])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "xdg" / "triage" / "config.toml").exists()


def test_connection_test_is_skipped_when_the_password_is_not_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRIAGE_PASSWORD", raising=False)
    path = tmp_path / "config.toml"
    result = init(path, *BASE[:-1])
    assert result.exit_code == 0, result.output
    assert (
        "Connection test skipped" in result.output and "TRIAGE_PASSWORD is not set" in result.output
    )
    assert path.exists()


@pytest.mark.parametrize(
    "value", ["plain", 'with "quotes"', "back\\slash", "tab\there", "ünïcode ✓", "del\x7f"]
)
def test_toml_values_round_trip(value: str) -> None:
    assert tomllib.loads(f"v = {wizard.toml_value(value)}")["v"] == value
    assert tomllib.loads(f"v = {wizard.toml_value([value, 'x'])}")["v"] == [value, "x"]


def test_a_template_without_a_key_is_a_bug_not_a_broken_config() -> None:
    answers = wizard.Answers(host="h", user="u", credential="password_env", source="PW")
    text = wizard.template().replace('generic = "Vendors/Generic"\n', "")
    with pytest.raises(RuntimeError, match=r"one line for generic in \[accounts.folders\]"):
        wizard.render_config(text, answers)


def test_a_password_typed_as_the_command_is_asked_again(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    mistake = "Hunter2-typed-by-mistake"
    answers = ["command", mistake, f"{sys.executable} -c pass", "", "", "", "", "", "y"]
    args = [*BASE[1:5], "--security", "tls", "--port", "993", "--no-test"]
    result = init(path, *args, input="\n".join(answers) + "\n")
    assert result.exit_code == 0, result.output
    assert "no such program on PATH" in result.output
    assert result.output.count(mistake) == 1  # the terminal's echo of the typing, nothing more
    assert mistake not in path.read_text()
    credentials = load_config(path).account().credentials
    assert credentials is not None and credentials.kind == "password_command"

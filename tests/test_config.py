"""Unit tests for triage.config: lookup, validation messages, secrets, and file permissions."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re
import shlex
import shutil
import stat
import sys
import textwrap
from pathlib import Path

import keyring
import keyring.errors
import pytest

from triage import config as cfg
from triage.config import (
    AccountConfig,
    Config,
    Credentials,
    Rule,
    Secret,
    check_permissions,
    find_config_path,
    load_config,
    parse_config,
    resolve_secret,
    write_config,
)
from triage.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config.example.toml"
PY = shlex.quote(sys.executable)

IMAP_ACCOUNT = """
[[accounts]]
name = "work"
backend = "imap"
host = "imap.example.com"
user = "jane@example.com"
password_env = "TRIAGE_TEST_PASSWORD"
"""

MAILDIR_ACCOUNT = """
[[accounts]]
name = "local"
backend = "maildir"
path = "/srv/mail/local"
"""


def parse(text: str) -> Config:
    return parse_config(textwrap.dedent(text), "config.toml")


def problems(text: str) -> list[str]:
    """The lines of the ConfigError that parsing `text` must raise (the summary line dropped)."""
    with pytest.raises(ConfigError) as info:
        parse(text)
    lines = str(info.value).splitlines()
    if len(lines) > 1:
        assert re.fullmatch(r"config\.toml: \d+ problems; .*", lines[0])
        lines = lines[1:]
    for line in lines:
        assert line.startswith("config.toml: "), line
    return lines


def one_problem(text: str) -> str:
    lines = problems(text)
    assert len(lines) == 1, lines
    return lines[0]


def imap_account(**overrides: str) -> str:
    """The IMAP account text with keys replaced (value is raw TOML) or removed (value "")."""
    lines = []
    for line in IMAP_ACCOUNT.strip().splitlines():
        key = line.split(" = ")[0]
        if key in overrides:
            if overrides[key]:
                lines.append(f"{key} = {overrides.pop(key)}")
            else:
                overrides.pop(key)
        else:
            lines.append(line)
    lines += [f"{key} = {value}" for key, value in overrides.items()]
    return "\n".join(lines) + "\n"


def command_account(kind: str, command: str) -> AccountConfig:
    text = imap_account(password_env="") + f"{kind} = {_toml_str(command)}\n"
    return parse(text).account()


def _toml_str(text: str) -> str:
    # JSON's string escapes are a subset of TOML's basic-string escapes.
    return json.dumps(text)


# --- the example file -----------------------------------------------------------------------


def test_example_file_loads() -> None:
    config = load_config(EXAMPLE)
    account = config.account()
    assert config.path == EXAMPLE
    assert account.name == "work"
    assert account.backend == "imap"
    assert account.credentials == Credentials("password_env", "TRIAGE_PASSWORD")
    assert account.own_addresses == ("jane@example.com",)
    assert account.folders.generic == "Vendors/Generic"


def test_example_file_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    leaf_keys = [
        *cfg._TRIAGE_KEYS,
        *cfg._RUN_KEYS,
        *(key for key in cfg._ACCOUNT_KEYS if key not in ("folders", "rules")),
        *cfg._FOLDER_KEYS,
        *cfg._RULE_KEYS,
    ]
    for key in leaf_keys:
        # Set, or shown commented out, with a comment line somewhere above it.
        assert re.search(rf"^(# )?{key} = ", text, re.MULTILINE), key
    for header in ("[triage]", "[run]", "[[accounts]]", "[accounts.folders]", "[[accounts.rules]]"):
        assert header in text


def test_example_commented_rule_block_is_valid() -> None:
    # Uncommenting the rule the example shows must give a valid config too.
    text = EXAMPLE.read_text(encoding="utf-8")
    text = re.sub(r"^# (\[\[accounts\.rules\]\]|from = |folder = )", r"\1", text, flags=re.M)
    config = parse(text)
    assert config.account().rules == (Rule("billing@acme.com", "Vendors/Acme"),)


# --- defaults -------------------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG dirs are Linux-only")
def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    config = parse(IMAP_ACCOUNT)
    assert config.state_dir == tmp_path / "state" / "triage"
    assert config.log_level == "info"
    assert config.run == cfg.RunConfig(
        poll_interval=60,
        idle_refresh=1500,
        batch_size=1000,
        move_batch=10000,
        max_message_bytes=262144,
        connect_timeout=30,
        retrain_after=20,
        retrain_margin=0.02,
        keep_models=5,
        digest_weekday="monday",
        digest_hour=7,
        digest_folder="INBOX",
        digest_skip_empty=False,
    )
    account = config.account()
    assert (account.port, account.security) == (993, "tls")
    assert account.ca_file is None
    assert account.allow_plaintext is False
    assert account.path is None
    assert account.own_domains == ()
    assert account.own_addresses == ("jane@example.com",)  # from user
    assert account.never_move == ()
    assert account.confidence_threshold == 0.5
    assert account.folders == cfg.FolderConfig(
        inbox="INBOX",
        partner_prefix="Vendors/",
        generic="Vendors/Generic",
        keep=("Archive",),
        ignore=(),
    )
    assert account.rules == ()


def test_default_port_follows_security() -> None:
    assert parse(imap_account(security='"starttls"')).account().port == 143
    assert parse(imap_account(security='"tls"')).account().port == 993
    assert parse(imap_account(security='"starttls"', port="1143")).account().port == 1143


def test_own_addresses_default_only_when_user_is_an_address() -> None:
    assert parse(imap_account(user='"jdoe"')).account().own_addresses == ()
    explicit = imap_account(own_addresses='["Jane@Example.COM", "j@example.org"]')
    assert parse(explicit).account().own_addresses == ("jane@example.com", "j@example.org")


def test_values_are_normalised() -> None:
    text = """
    [triage]
    log_level = "DEBUG"
    [run]
    digest_weekday = "Friday"
    """ + imap_account(own_domains='["Example.COM", "@acme.io", "example.com"]')
    config = parse(text)
    assert config.log_level == "debug"
    assert config.run.digest_weekday == "friday"
    assert config.run.digest_weekday_number == 4
    # lower-cased, "@" dropped, repeats removed in order
    assert config.account().own_domains == ("example.com", "acme.io")


def test_paths_expand_home_and_resolve_against_the_config_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = tmp_path / "conf" / "config.toml"
    path.parent.mkdir()
    path.write_text(
        '[triage]\nstate_dir = "~/state"\n' + MAILDIR_ACCOUNT.replace("/srv/mail/local", "mail")
    )
    config = load_config(path)
    assert config.state_dir == tmp_path / "home" / "state"
    assert config.account().path == tmp_path / "conf" / "mail"


def test_config_is_frozen() -> None:
    config = parse(IMAP_ACCOUNT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.log_level = "debug"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.account().host = "evil.example.com"  # type: ignore[misc]


# --- where the file is looked for -----------------------------------------------------------


@pytest.fixture
def config_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Path]:
    """Three valid config files: one for --config, one for $TRIAGE_CONFIG, one in XDG."""
    paths = {
        "explicit": tmp_path / "explicit.toml",
        "env": tmp_path / "env.toml",
        "default": tmp_path / "xdg" / "triage" / "config.toml",
    }
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(IMAP_ACCOUNT)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("TRIAGE_CONFIG", raising=False)
    return paths


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG dirs are Linux-only")
def test_lookup_order(monkeypatch: pytest.MonkeyPatch, config_dirs: dict[str, Path]) -> None:
    assert find_config_path(None) == config_dirs["default"]
    monkeypatch.setenv("TRIAGE_CONFIG", str(config_dirs["env"]))
    assert find_config_path(None) == config_dirs["env"]
    assert find_config_path(config_dirs["explicit"]) == config_dirs["explicit"]
    assert find_config_path(str(config_dirs["explicit"])) == config_dirs["explicit"]


def test_missing_explicit_file_does_not_fall_back(
    monkeypatch: pytest.MonkeyPatch, config_dirs: dict[str, Path], tmp_path: Path
) -> None:
    monkeypatch.setenv("TRIAGE_CONFIG", str(config_dirs["env"]))
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        find_config_path(missing)
    message = str(info.value)
    assert str(missing) in message
    assert "--config" in message
    assert "triage init" in message


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG dirs are Linux-only")
def test_missing_default_file_names_it_and_the_fix(
    config_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dirs["default"].unlink()
    with pytest.raises(ConfigError, match="triage init") as info:
        find_config_path(None)
    assert str(config_dirs["default"]) in str(info.value)

    monkeypatch.setenv("TRIAGE_CONFIG", str(config_dirs["env"]) + ".missing")
    with pytest.raises(ConfigError, match=r"TRIAGE_CONFIG"):
        find_config_path(None)


def test_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        find_config_path(tmp_path)


def test_load_config_of_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no such file.*triage init"):
        load_config(tmp_path / "config.toml")


# --- syntax, unknown keys, types ------------------------------------------------------------


def test_toml_syntax_error_names_line_and_column() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("[run]\npoll_interval = 60\nbatch_size = = 3\n", "config.toml")
    message = str(info.value)
    assert message.startswith("config.toml:3:14: invalid TOML")
    assert "line 3" in message


def test_toml_syntax_error_does_not_quote_the_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("password = hunter2\n", "config.toml")
    assert "hunter2" not in str(info.value)


def test_unknown_key_suggests_the_closest() -> None:
    line = one_problem(imap_account(hots='"x"'))
    assert line == 'config.toml: accounts[0]: unknown key "hots"; did you mean "host"?'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[runn]\n" + IMAP_ACCOUNT, 'config.toml: unknown key "runn"; did you mean "run"?'),
        (
            "[run]\npoll_intervall = 5\n" + IMAP_ACCOUNT,
            'config.toml: run: unknown key "poll_intervall"; did you mean "poll_interval"?',
        ),
        (
            IMAP_ACCOUNT + '[accounts.folders]\ngeneirc = "X"\n',
            'config.toml: accounts[0].folders: unknown key "geneirc"; did you mean "generic"?',
        ),
    ],
)
def test_unknown_keys_everywhere(text: str, expected: str) -> None:
    assert one_problem(text) == expected


def test_unknown_key_without_a_close_match_lists_the_valid_ones() -> None:
    line = one_problem("[triage]\nzzz = 1\n" + IMAP_ACCOUNT)
    assert 'unknown key "zzz"; valid keys: state_dir, log_level' in line


def test_all_problems_are_reported_at_once() -> None:
    text = """
    [run]
    batch_size = 0
    digest_hour = 24
    """ + imap_account(hots='"x"', port='"993"')
    with pytest.raises(ConfigError) as info:
        parse(text)
    lines = str(info.value).splitlines()
    assert lines[0] == "config.toml: 4 problems; fix them all, then run triage again:"
    body = "\n".join(lines[1:])
    assert len(lines) == 5
    assert "run.batch_size: must be from 1 to 5000 UIDs, got 0" in body
    assert "run.digest_hour: must be from 0 to 23, got 24" in body
    assert 'unknown key "hots"' in body
    assert "accounts[0].port: expected an integer, got a string" in body


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            {"port": '"993"'},
            'accounts[0].port: expected an integer, got a string ("993"); '
            "remove the quotes: port = 993",
        ),
        ({"port": "true"}, "accounts[0].port: expected an integer, got a boolean (true)"),
        ({"port": "99999"}, "accounts[0].port: must be from 1 to 65535, got 99999"),
        ({"host": "993"}, "accounts[0].host: expected a string, got an integer (993)"),
        (
            {"allow_plaintext": '"yes"'},
            'accounts[0].allow_plaintext: expected a boolean (true or false), got a string ("yes")',
        ),
        (
            {"own_domains": '"example.com"'},
            "accounts[0].own_domains: expected an array of strings, got a string; "
            'write own_domains = ["example.com"]',
        ),
        (
            {"own_names": '["Jane", 7]'},
            "accounts[0].own_names[1]: expected a string, got an integer",
        ),
        (
            {"confidence_threshold": "1.0"},
            "accounts[0].confidence_threshold: must be between 0 and 1 (exclusive), got 1.0",
        ),
        (
            {"confidence_threshold": '"high"'},
            "accounts[0].confidence_threshold: expected a number between 0 and 1, got a string",
        ),
        ({"folders": '"INBOX"'}, "accounts[0].folders: expected a table"),
    ],
)
def test_type_and_range_errors(override: dict[str, str], expected: str) -> None:
    assert expected in one_problem(imap_account(**override))


def test_type_errors_never_echo_credential_values() -> None:
    lines = problems(
        imap_account(password_env="")
        + 'password_command = ["echo", "hunter2"]\n'
        + "\n[[accounts]]\n"
        + 'name = "b"\nbackend = "imap"\nhost = "h.example.com"\nuser = "u"\n'
        + "password_env = 31415926\n"
        + "\n[[accounts]]\n"
        + 'name = "c"\nbackend = "imap"\nhost = "h.example.com"\nuser = "u"\n'
        + 'password_env = "my secret pw"\n'
    )
    joined = "\n".join(lines)
    assert "accounts[0].password_command: expected a string, got an array" in joined
    assert "accounts[1].password_env: expected a string, got an integer" in joined
    assert "accounts[2].password_env: must be the NAME of an environment variable" in joined
    for secret in ("hunter2", "31415926", "my secret pw"):
        assert secret not in joined


def test_password_key_is_rejected_without_echoing_it() -> None:
    line = one_problem(imap_account(password='"hunter2"'))
    assert line == (
        "config.toml: accounts[0].password: passwords are not stored in the config; remove "
        "this key and use password_env, password_command or password_keyring"
    )


@pytest.mark.parametrize(
    ("key", "value", "ok"),
    [
        ("idle_refresh", 1739, True),
        ("idle_refresh", 1740, False),
        ("idle_refresh", 29, False),
        ("idle_refresh", 30, True),
        ("poll_interval", 4, False),
        ("poll_interval", 5, True),
        ("batch_size", 5001, False),
        ("max_message_bytes", 4095, False),
        ("max_message_bytes", 52428800, True),
        ("retrain_after", 0, False),
        ("keep_models", 0, False),
        ("digest_hour", 23, True),
    ],
)
def test_run_ranges(key: str, value: int, ok: bool) -> None:
    text = f"[run]\n{key} = {value}\n" + IMAP_ACCOUNT
    if ok:
        assert getattr(parse(text).run, key) == value
    else:
        assert one_problem(text).startswith(f"config.toml: run.{key}: must be ")


def test_bad_choices() -> None:
    line = one_problem('[run]\ndigest_weekday = "mondy"\n' + IMAP_ACCOUNT)
    assert "run.digest_weekday: must be one of" in line
    assert 'did you mean "monday"?' in line
    assert 'accounts[0].security: must be one of "tls", "starttls", "plain"' in one_problem(
        imap_account(security='"ssl"')
    )


# --- accounts: required keys, backends, names -----------------------------------------------


def test_no_accounts() -> None:
    assert "no account is configured" in one_problem("[run]\n")
    assert "no account is configured" in one_problem("accounts = []\n")
    line = one_problem('[accounts]\nname = "x"\n')
    assert "expected an array of tables, got a table; write [[accounts]]" in line


def test_imap_required_keys() -> None:
    text = '[[accounts]]\nname = "work"\nbackend = "imap"\n'
    joined = "\n".join(problems(text))
    assert "accounts[0].host: missing; add the IMAP server name" in joined
    assert "accounts[0].user: missing; add the login name" in joined
    assert "accounts[0]: no credential source; set exactly one of password_env" in joined
    assert len(problems(text)) == 3


def test_maildir_account() -> None:
    account = parse(MAILDIR_ACCOUNT).account()
    assert account.backend == "maildir"
    assert account.path == Path("/srv/mail/local")
    assert (account.host, account.port, account.security, account.credentials) == (
        None,
        None,
        None,
        None,
    )


def test_maildir_required_path_and_no_imap_keys() -> None:
    text = '[[accounts]]\nname = "m"\nbackend = "maildir"\nhost = "imap.example.com"\n'
    joined = "\n".join(problems(text))
    assert "accounts[0].path: missing; give the Maildir++ root" in joined
    assert 'accounts[0].host: only used by backend = "imap"' in joined
    assert 'only used by backend = "maildir"' in one_problem(imap_account(path='"~/Mail"'))


def test_name_and_backend_required() -> None:
    joined = "\n".join(problems(imap_account(name="", backend="")))
    assert "accounts[0].name: missing" in joined
    assert 'accounts[0].backend: missing; add backend = "imap" or backend = "maildir"' in joined
    assert 'accounts[0].backend: must be one of "imap", "maildir"' in one_problem(
        imap_account(backend='"pop3"')
    )


@pytest.mark.parametrize("name", ["a b", "../etc", "..", "wörk", ""])
def test_bad_account_names(name: str) -> None:
    line = one_problem(imap_account(name=_toml_str(name) if name else '""'))
    assert line.startswith("config.toml: accounts[0].name: ")


def test_duplicate_account_names() -> None:
    line = one_problem(IMAP_ACCOUNT + MAILDIR_ACCOUNT.replace('"local"', '"Work"'))
    assert line == (
        'config.toml: accounts[1].name: "Work" is already used by accounts[0]; account names '
        "must be unique (ignoring case) because they name the state files"
    )


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ('"imaps://imap.example.com"', "is a URL"),
        ('"imap.example.com:993"', 'write host = "imap.example.com" and port = 993'),
        ('"imap example.com"', "is not a host name"),
        ('""', "accounts[0].host: is empty"),
    ],
)
def test_bad_hosts(host: str, expected: str) -> None:
    assert expected in one_problem(imap_account(host=host))


def test_ipv6_host_is_not_mistaken_for_host_port() -> None:
    assert parse(imap_account(host='"::1"', security='"plain"')).account().host == "::1"


def test_ca_file_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    line = one_problem(imap_account(ca_file=_toml_str(str(missing))))
    assert f"accounts[0].ca_file: no such file: {missing}" in line
    missing.write_text("-----BEGIN CERTIFICATE-----\n")
    assert parse(imap_account(ca_file=_toml_str(str(missing)))).account().ca_file == missing


def test_credential_source_exactly_one() -> None:
    line = one_problem(imap_account(password_keyring='"triage"'))
    assert "several credential sources (password_env, password_keyring); keep exactly one" in line
    assert "unbalanced quotes" in one_problem(
        imap_account(password_env="", password_command="""'pass "show'""")
    )


@pytest.mark.parametrize(
    ("kind", "source"),
    [
        ("password_env", "MY_PW"),
        ("password_command", "pass show mail/work"),
        ("password_keyring", "triage"),
        ("oauth2_token_command", "oauth2-token work"),
    ],
)
def test_each_credential_kind_parses(kind: str, source: str) -> None:
    text = imap_account(password_env="") + f'{kind} = "{source}"\n'
    assert parse(text).account().credentials == Credentials(kind, source)  # type: ignore[arg-type]


def test_credentials_repr_hides_the_command() -> None:
    account = command_account("password_command", "echo hunter2")
    assert "hunter2" not in repr(account)


# --- domains, addresses, folders, rules -----------------------------------------------------


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"own_domains": '["example"]'}, 'own_domains[0]: "example" is not a domain name'),
        ({"own_domains": '["exa mple.com"]'}, "own_domains[0]"),
        ({"own_addresses": '["jane"]'}, 'own_addresses[0]: "jane" is not an email address'),
        ({"never_move": '["bank.com"]'}, 'write "@bank.com" to match the whole domain'),
        ({"never_move": '["@bank"]'}, 'never_move[0]: "@bank" is not a valid @domain'),
        ({"own_names": '[" "]'}, "own_names[0]: is empty; remove it"),
    ],
)
def test_domain_and_address_validation(override: dict[str, str], expected: str) -> None:
    assert expected in one_problem(imap_account(**override))


def test_never_move_accepts_addresses_and_domains() -> None:
    account = parse(imap_account(never_move='["Boss@Example.org", "@Bank.com"]')).account()
    assert account.never_move == ("boss@example.org", "@bank.com")


@pytest.mark.parametrize(
    ("folders", "expected"),
    [
        ('generic = "inbox"', 'folders.generic: is the inbox ("INBOX")'),
        ('keep = ["Vendors/Acme"]', 'keep[0]: "Vendors/Acme" is under partner_prefix "Vendors/"'),
        ('keep = ["Vendors/Generic"]', 'keep[0]: "Vendors/Generic" is the generic bucket'),
        ('ignore = ["INBOX"]', 'ignore[0]: "INBOX" must be read by triage'),
        ('ignore = ["Archive"]', 'ignore[0]: "Archive" is also in keep'),
        ('partner_prefix = ""', "folders.partner_prefix: is empty"),
    ],
)
def test_folder_validation(folders: str, expected: str) -> None:
    assert expected in one_problem(IMAP_ACCOUNT + f"[accounts.folders]\n{folders}\n")


def test_partner_folders() -> None:
    folders = parse(IMAP_ACCOUNT).account().folders
    assert folders.is_partner("Vendors/Acme")
    assert not folders.is_partner("Vendors/Generic")
    assert not folders.is_partner("Archive")


def test_rules() -> None:
    text = IMAP_ACCOUNT + textwrap.dedent(
        """
        [[accounts.rules]]
        from = "Billing@Acme.com"
        folder = "Vendors/Acme"
        [[accounts.rules]]
        from = "@newsletters.example.net"
        folder = "Vendors/Generic"
        [[accounts.rules]]
        from = "ceo@partner.example"
        folder = "inbox"
        """
    )
    rules = parse(text).account().rules
    assert rules == (
        Rule("billing@acme.com", "Vendors/Acme"),
        Rule("@newsletters.example.net", "Vendors/Generic"),
        Rule("ceo@partner.example", "INBOX"),
    )
    assert rules[0].matches("BILLING@acme.com")
    assert rules[1].matches("promo@newsletters.example.net")
    assert not rules[1].matches("promo@example.net")


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ('folder = "X"', "rules[0].from: missing"),
        ('from = "a@b.com"', "rules[0].folder: missing"),
        ('from = ["a@b.com", "c@d.com"]\nfolder = "X"', "got an array; write one rule per sender"),
        ('from = "acme.com"\nfolder = "X"', 'write "@acme.com" to match the whole domain'),
        ('from = "not an address"\nfolder = "X"', "is neither an address nor an @domain"),
        ('form = "a@b.com"\nfolder = "X"', 'unknown key "form"; did you mean "from"?'),
    ],
)
def test_rule_errors(rule: str, expected: str) -> None:
    lines = problems(IMAP_ACCOUNT + f"[[accounts.rules]]\n{rule}\n")
    assert any(expected in line for line in lines), lines


def test_duplicate_rule_and_never_move_conflict() -> None:
    rule = '[[accounts.rules]]\nfrom = "a@b.com"\nfolder = "Vendors/B"\n'
    line = one_problem(IMAP_ACCOUNT + rule + rule.replace("Vendors/B", "Vendors/C"))
    assert 'accounts[0].rules[1].from: "a@b.com" already has a rule (accounts[0].rules[0])' in line
    text = imap_account(never_move='["@b.com"]').replace("a@b.com", "x") + rule.replace(
        "a@b.com", "@b.com"
    )
    assert "is also in never_move" in one_problem(text)


# --- plaintext ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "::1", "[::1]", "::ffff:127.0.0.1"]
)
def test_plain_is_allowed_on_loopback(host: str) -> None:
    account = parse(imap_account(host=f'"{host}"', security='"plain"')).account()
    assert account.port == 143
    assert account.security == "plain" and not account.allow_plaintext


@pytest.mark.parametrize("host", ["imap.example.com", "10.0.0.1", "localhost.example.com"])
def test_plain_to_a_remote_host_is_refused(host: str) -> None:
    line = one_problem(imap_account(host=f'"{host}"', security='"plain"'))
    assert line.startswith(
        f'config.toml: accounts[0].security: "plain" would send the password unencrypted to {host}'
    )
    assert "allow_plaintext = true" in line


def test_allow_plaintext_permits_it() -> None:
    account = parse(imap_account(security='"plain"', allow_plaintext="true")).account()
    assert account.security == "plain" and account.allow_plaintext
    assert account.host == "imap.example.com"


# --- Config.account -------------------------------------------------------------------------


def test_account_lookup() -> None:
    single = parse(IMAP_ACCOUNT)
    assert single.account(None).name == "work"
    several = parse(IMAP_ACCOUNT + MAILDIR_ACCOUNT)
    with pytest.raises(ConfigError, match=r"several accounts are configured \(work, local\)"):
        several.account(None)
    assert several.account("local").backend == "maildir"
    assert several.account("LOCAL").name == "local"
    with pytest.raises(ConfigError, match='no account named "wrk"; did you mean "work"'):
        several.account("wrk")
    with pytest.raises(ConfigError, match="the accounts are: work, local"):
        several.account("zzzzzz")


# --- secrets --------------------------------------------------------------------------------


def test_secret_never_shows_its_value() -> None:
    secret = Secret("hunter2")
    assert repr(secret) == "Secret('***')"
    assert str(secret) == "***"
    assert "hunter2" not in f"{secret} {secret!r} {[secret]} {'%s' % secret}"  # noqa: UP031
    assert secret.reveal() == "hunter2"
    assert secret.is_oauth2 is False
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_password_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    account = parse(IMAP_ACCOUNT).account()
    monkeypatch.setenv("TRIAGE_TEST_PASSWORD", " pass word ")
    secret = resolve_secret(account)
    assert secret.reveal() == " pass word "  # taken as is: spaces may be part of a password
    assert not secret.is_oauth2

    monkeypatch.setenv("TRIAGE_TEST_PASSWORD", "")
    with pytest.raises(ConfigError, match="TRIAGE_TEST_PASSWORD is empty"):
        resolve_secret(account)
    monkeypatch.delenv("TRIAGE_TEST_PASSWORD")
    with pytest.raises(ConfigError) as info:
        resolve_secret(account)
    assert str(info.value).startswith(
        'account "work" (password_env): environment variable TRIAGE_TEST_PASSWORD is not set; '
        "export it"
    )


def test_password_from_python_command() -> None:
    account = command_account(
        "password_command", f"{PY} -c \"print('s3cret pw'); print('second line')\""
    )
    secret = resolve_secret(account)
    assert secret.reveal() == "s3cret pw"
    assert not secret.is_oauth2


@pytest.mark.skipif(shutil.which("printf") is None, reason="needs printf")
def test_password_from_printf_command() -> None:
    account = command_account("password_command", r"printf 'pw from printf\nignored'")
    assert resolve_secret(account).reveal() == "pw from printf"


def test_oauth2_token_command() -> None:
    account = command_account("oauth2_token_command", f"{PY} -c \"print('  ya29.token  ')\"")
    secret = resolve_secret(account)
    assert secret.reveal() == "ya29.token"
    assert secret.is_oauth2


def test_failing_command_reports_stderr_but_never_stdout() -> None:
    script = (
        "import sys; print('TOPSECRET'); "
        "print('first line', file=sys.stderr); "
        "print('gpg: decryption failed for TOPSECRET', file=sys.stderr); sys.exit(3)"
    )
    account = command_account("password_command", f'{PY} -c "{script}"')
    with pytest.raises(ConfigError) as info:
        resolve_secret(account)
    message = str(info.value)
    assert message == (
        f'account "work" (password_command): {sys.executable} exited with status 3: '
        "gpg: decryption failed for ***; run it by hand to see why"
    )
    assert "TOPSECRET" not in message


def test_command_that_prints_nothing() -> None:
    account = command_account("password_command", f'{PY} -c "print()"')
    with pytest.raises(ConfigError, match="printed nothing on its first line"):
        resolve_secret(account)


def test_command_not_found() -> None:
    account = command_account("password_command", "no-such-command-triage-test --x")
    with pytest.raises(ConfigError, match="command not found: no-such-command-triage-test"):
        resolve_secret(account)


def test_command_timeout_leaves_no_trace_of_its_output() -> None:
    script = "import sys, time; print('PARTIAL'); sys.stdout.flush(); time.sleep(10)"
    account = command_account("password_command", f'{PY} -c "{script}"')
    with pytest.raises(ConfigError, match=r"did not finish within 0\.5 s") as info:
        resolve_secret(account, timeout=0.5)
    # No chained TimeoutExpired: it would carry the partial stdout into tracebacks.
    assert info.value.__context__ is None
    assert info.value.__cause__ is None


def test_password_from_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []

    def fake_get_password(service: str, user: str) -> str | None:
        calls.append((service, user))
        return "from-keyring" if service == "triage" else None

    monkeypatch.setattr(keyring, "get_password", fake_get_password)
    account = command_account("password_keyring", "triage")
    assert resolve_secret(account).reveal() == "from-keyring"
    assert calls == [("triage", "jane@example.com")]

    other = command_account("password_keyring", "other service")
    with pytest.raises(ConfigError) as info:
        resolve_secret(other)
    assert "keyring set 'other service' jane@example.com" in str(info.value)


def test_keyring_backend_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(service: str, user: str) -> str | None:
        raise keyring.errors.NoKeyringError("No recommended backend was available.")

    monkeypatch.setattr(keyring, "get_password", broken)
    with pytest.raises(ConfigError) as info:
        resolve_secret(command_account("password_keyring", "triage"))
    message = str(info.value)
    assert "the system keyring is not usable (No recommended backend was available.)" in message
    assert "use password_env or password_command" in message


def test_maildir_account_has_no_secret() -> None:
    with pytest.raises(ConfigError, match="no credentials"):
        resolve_secret(parse(MAILDIR_ACCOUNT).account())


# --- files: permissions and writing ---------------------------------------------------------

posix_only = pytest.mark.skipif(os.name != "posix", reason="mode bits are POSIX-only")


@posix_only
def test_check_permissions(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(imap_account(password='"hunter2"'))
    path.chmod(0o644)
    warning = check_permissions(path)
    assert warning is not None
    assert "mode 0644" in warning
    assert f"chmod 600 {path}" in warning
    assert "hunter2" not in warning

    path.chmod(0o600)
    assert check_permissions(path) is None
    path.write_text(IMAP_ACCOUNT)
    path.chmod(0o644)
    assert check_permissions(path) is None  # readable, but nothing secret in it


@posix_only
def test_load_config_reports_a_readable_password_with_the_rejection(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(imap_account(password='"hunter2"'))
    path.chmod(0o640)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert f"{path}: accounts[0].password: passwords are not stored in the config" in message
    assert "readable by other users (mode 0640)" in message
    assert "hunter2" not in message


@posix_only
def test_write_config_creates_dirs_and_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "config.toml"
    old_umask = os.umask(0)  # the most permissive umask must still give 0600
    try:
        write_config(path, IMAP_ACCOUNT)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_config(path).account().name == "work"


@posix_only
def test_write_config_does_not_clobber_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("original")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="already exists"):
        write_config(path, IMAP_ACCOUNT)
    assert path.read_text() == "original"

    write_config(path, IMAP_ACCOUNT, overwrite=True)
    assert path.read_text() == IMAP_ACCOUNT
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temp file left

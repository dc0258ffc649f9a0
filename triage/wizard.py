"""`triage init`: write a config from the shipped config.example.toml, then test it.

The command belongs to the command line (cli.py registers it; it is kept here so the wizard's
prompts and presets do not crowd cli.py). The config is the documented example with the user's
answers filled in and every comment kept, so the file explains itself; it is validated before
it is written, written 0600, and never replaces an existing file without --force.

Every question has a flag, and --non-interactive never prompts (for scripts and provisioning).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import click

from triage.config import (
    CONFIG_ENV,
    SECURITY_MODES,
    CredentialKind,
    default_config_path,
    parse_config,
    resolve_secret,
    write_config,
)
from triage.errors import ConfigError, TriageError

TEMPLATE_NAME = "config.example.toml"

#: Mail domains shared by millions of people: never the buyer's "own" organisation.
PUBLIC_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "fastmail.com",
        "fastmail.fm",
        "yahoo.com",
        "icloud.com",
        "me.com",
        "proton.me",
        "protonmail.com",
    }
)


@dataclass(frozen=True, slots=True)
class Preset:
    """What a provider fixes: server, security, the usual credential, folder defaults."""

    label: str
    host: str = ""
    port: int = 993
    security: str = "tls"
    credential: CredentialKind = "password_env"
    keep: tuple[str, ...] = ("Archive",)
    note: str = ""


PRESETS: dict[str, Preset] = {
    "gmail": Preset(
        "Gmail / Google Workspace",
        host="imap.gmail.com",
        # Gmail has no Archive folder: archived mail lives only in [Gmail]/All Mail, which also
        # holds the inbox and every label, so it cannot serve as examples of mail to keep.
        keep=(),
        note=(
            "Gmail: log in with an app password (needs 2-Step Verification) or an OAuth2 token "
            "command (scope https://mail.google.com/). Folders are labels; see the README's "
            "provider notes."
        ),
    ),
    "microsoft365": Preset(
        "Microsoft 365 / Outlook.com",
        host="outlook.office365.com",
        credential="oauth2_token_command",
        note=(
            "Microsoft 365 refuses IMAP passwords: give a command that prints an OAuth2 access "
            "token (scope https://outlook.office.com/IMAP.AccessAsUser.All)."
        ),
    ),
    "fastmail": Preset(
        "Fastmail",
        host="imap.fastmail.com",
        note="Fastmail: create an app password (Settings > Privacy & Security) for triage.",
    ),
    "other": Preset("Dovecot or another IMAP server"),
}
PROVIDER_ALIASES = {"outlook": "microsoft365", "office365": "microsoft365", "dovecot": "other"}
PROVIDER_CHOICES = (*PRESETS, *PROVIDER_ALIASES)

#: How the prompt names each credential source, and the flag that sets it.
CREDENTIAL_CHOICES: dict[str, CredentialKind] = {
    "env": "password_env",
    "command": "password_command",
    "keyring": "password_keyring",
    "oauth2": "oauth2_token_command",
}
_CREDENTIAL_FLAGS: dict[CredentialKind, str] = {
    "password_env": "--password-env",
    "password_command": "--password-command",
    "password_keyring": "--keyring",
    "oauth2_token_command": "--oauth2-token-command",
}
_CREDENTIAL_PROMPTS: dict[CredentialKind, tuple[str, str | None]] = {
    "password_env": ("Environment variable that holds the password", "TRIAGE_PASSWORD"),
    "password_command": ("Command that prints the password (e.g. pass show mail/work)", None),
    "password_keyring": ("Keyring service name", "triage"),
    "oauth2_token_command": ("Command that prints an OAuth2 access token", None),
}


@dataclass(frozen=True, slots=True)
class Answers:
    """Everything `triage init` fills into the example config."""

    host: str
    user: str
    credential: CredentialKind
    source: str
    port: int = 993
    security: str = "tls"
    name: str = "work"
    own_domains: tuple[str, ...] = ()
    own_names: tuple[str, ...] = ()
    partner_prefix: str = "Vendors/"
    generic: str = "Vendors/Generic"
    keep: tuple[str, ...] = ("Archive",)
    state_dir: str = ""
    ca_file: str = ""


# --- the config text ----------------------------------------------------------------------


def template() -> str:
    """The shipped config.example.toml (package data, identical to the one in the checkout)."""
    return resources.files("triage").joinpath(TEMPLATE_NAME).read_text(encoding="utf-8")


def toml_value(value: str | int | Sequence[str]) -> str:
    """A TOML literal for a string, an integer or an array of strings."""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _toml_string(value)
    return "[" + ", ".join(_toml_string(item) for item in value) + "]"


def _toml_string(text: str) -> str:
    # A TOML basic string has JSON's escapes; only DEL, which JSON leaves alone, needs one more.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def render_config(text: str, answers: Answers) -> str:
    """The example config `text` with `answers` filled in; comments and layout are kept.

    Each key is replaced on its one line in its table; the credential keys are commented out
    except the chosen one. A key the template lacks is a packaging bug and raises RuntimeError.
    """
    lines = text.splitlines(keepends=True)
    values: dict[tuple[str, str], str] = {
        ("triage", "state_dir"): toml_value(answers.state_dir),
        ("accounts", "name"): toml_value(answers.name),
        ("accounts", "host"): toml_value(answers.host),
        ("accounts", "port"): toml_value(answers.port),
        ("accounts", "security"): toml_value(answers.security),
        ("accounts", "user"): toml_value(answers.user),
        ("accounts", "ca_file"): toml_value(answers.ca_file),
        ("accounts", "own_domains"): toml_value(answers.own_domains),
        ("accounts", "own_names"): toml_value(answers.own_names),
        ("accounts.folders", "partner_prefix"): toml_value(answers.partner_prefix),
        ("accounts.folders", "generic"): toml_value(answers.generic),
        ("accounts.folders", "keep"): toml_value(answers.keep),
    }
    for kind in _CREDENTIAL_FLAGS:
        chosen = kind == answers.credential
        values[("accounts", kind)] = toml_value(answers.source) if chosen else ""
    for (table, key), value in values.items():
        index = _find_key(lines, table, key)
        ending = "\n" if lines[index].endswith("\n") else ""
        if value:
            lines[index] = f"{key} = {value}{ending}"
        elif not lines[index].lstrip().startswith("#"):
            lines[index] = f"# {lines[index]}"  # another credential source: keep it as an example
    return "".join(lines)


_TABLE = re.compile(r"^\s*(#\s*)?\[\[?\s*([A-Za-z0-9_.]+)\s*\]\]?\s*$")


def _find_key(lines: list[str], table: str, key: str) -> int:
    """The index of the one line `key = ...` (or `# key = ...`) in `table` of the template."""
    pattern = re.compile(rf"^\s*(#\s*)?{re.escape(key)}\s*=")
    current = ""
    found: list[int] = []
    for index, line in enumerate(lines):
        if match := _TABLE.match(line):
            # A commented-out table header ("# [[accounts.rules]]") opens no table.
            if not match.group(1):
                current = match.group(2)
            continue
        if current == table and pattern.match(line):
            found.append(index)
    if len(found) != 1:
        raise RuntimeError(
            f"{TEMPLATE_NAME}: expected one line for {key} in [{table}], found {len(found)}; "
            "the example config and triage/wizard.py disagree"
        )
    return found[0]


# --- answers ------------------------------------------------------------------------------


def default_domains(user: str) -> tuple[str, ...]:
    """The domain of the login, unless it is a public mail service shared with strangers."""
    _, at, domain = user.strip().lower().rpartition("@")
    if not at or not domain or domain in PUBLIC_MAIL_DOMAINS:
        return ()
    return (domain,)


def _split(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def target_path(explicit: Path | None) -> Path:
    """Where the config goes: --config, else $TRIAGE_CONFIG, else the platform default; the
    same place every other command looks."""
    if explicit is not None and str(explicit):
        return explicit.expanduser().absolute()
    if env := os.environ.get(CONFIG_ENV, ""):
        return Path(env).expanduser().absolute()
    return default_config_path()


class _Asker:
    """Gives each answer from its flag, else from a prompt, else (non-interactive) a default."""

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive
        self.missing: list[str] = []

    def text(
        self,
        given: str | None,
        prompt: str,
        default: str | None,
        flag: str,
        check: Callable[[str], str] | None = None,
    ) -> str:
        if given is not None:
            return given.strip()
        if self.interactive:
            # `check` raises click.BadParameter to have the question asked again.
            return str(click.prompt(prompt, default=default, value_proc=check)).strip()
        if default is None:
            self.missing.append(flag)
            return ""
        return default

    def number(self, given: int | None, prompt: str, default: int) -> int:
        if given is not None:
            return given
        if self.interactive:
            return int(click.prompt(prompt, default=default, type=click.IntRange(1, 65535)))
        return default

    def choice(self, given: str | None, prompt: str, choices: Sequence[str], default: str) -> str:
        if given is not None:
            return given
        if self.interactive:
            return str(click.prompt(prompt, default=default, type=click.Choice(list(choices))))
        return default

    def listing(
        self, given: tuple[str, ...], prompt: str, default: tuple[str, ...]
    ) -> tuple[str, ...]:
        if given:
            return tuple(item.strip() for item in given if item.strip())
        if self.interactive:
            shown = ", ".join(default)
            return _split(click.prompt(prompt, default=shown, show_default=bool(shown), type=str))
        return default


# --- the command --------------------------------------------------------------------------


@click.command()
@click.option(
    "--provider",
    type=click.Choice(PROVIDER_CHOICES, case_sensitive=False),
    help="Fill in server and security for gmail, microsoft365 (outlook), fastmail, or other.",
)
@click.option("--host", help="IMAP server name.")
@click.option("--port", type=click.IntRange(1, 65535), help="IMAP port (993 for tls, else 143).")
@click.option(
    "--security",
    type=click.Choice(SECURITY_MODES),
    help="tls (port 993), starttls (143), or plain (only to this machine).",
)
@click.option("--user", help="Login name, usually your address.")
@click.option("--password-env", metavar="NAME", help="Environment variable with the password.")
@click.option("--password-command", metavar="CMD", help="Command printing the password.")
@click.option("--keyring", "password_keyring", metavar="SERVICE", help="System keyring service.")
@click.option("--oauth2-token-command", metavar="CMD", help="Command printing an OAuth2 token.")
@click.option("--own-domain", multiple=True, help="Your organisation's mail domain (repeatable).")
@click.option("--own-name", multiple=True, help="Your name as vendors write it (repeatable).")
@click.option("--partner-prefix", help="Folder prefix of the trusted partners [Vendors/].")
@click.option("--generic-folder", help="The generic vendor bucket [Vendors/Generic].")
@click.option("--keep-folder", multiple=True, help="A folder of mail that stays (repeatable).")
@click.option("--name", "account_name", help="Short account name [work].")
@click.option("--state-dir", help="Where state and models go [the platform state dir].")
@click.option("--ca-file", help="Extra PEM certificates to trust (a private CA).")
@click.option("--force", is_flag=True, help="Replace an existing config file.")
@click.option("--no-test", is_flag=True, help="Write the config without connecting.")
@click.option("--non-interactive", is_flag=True, help="Never prompt; take flags and defaults.")
@click.pass_context
def init(
    ctx: click.Context,
    provider: str | None,
    host: str | None,
    port: int | None,
    security: str | None,
    user: str | None,
    password_env: str | None,
    password_command: str | None,
    password_keyring: str | None,
    oauth2_token_command: str | None,
    own_domain: tuple[str, ...],
    own_name: tuple[str, ...],
    partner_prefix: str | None,
    generic_folder: str | None,
    keep_folder: tuple[str, ...],
    account_name: str | None,
    state_dir: str | None,
    ca_file: str | None,
    force: bool,
    no_test: bool,
    non_interactive: bool,
) -> None:
    """Write a config (server, login, where the password or token comes from, your domains and
    names, folder names) from the documented example, then connect and show what `triage check`
    shows. Asks for what the flags do not give; --non-interactive never asks."""
    path = target_path(getattr(ctx.obj, "config_path", None))
    if path.exists() and not force:
        raise ConfigError(
            f"{path}: already exists; edit it, run `triage init --force` to replace it, or "
            f"write another file with `triage --config PATH init`"
        )
    ask = _Asker(interactive=not non_interactive)

    if provider is None and host is not None:
        provider = "other"  # a server given by name needs no preset
    if provider is None and ask.interactive:
        click.echo("Providers: " + ", ".join(f"{k} ({p.label})" for k, p in PRESETS.items()))
    key = ask.choice(provider, "Provider", list(PRESETS), "other").lower()
    preset = PRESETS[PROVIDER_ALIASES.get(key, key)]
    if preset.note:
        click.echo(preset.note)

    if preset.host:  # a provider's server settings are known: no need to ask
        host = host or preset.host
        security = security or preset.security
        port = port or (preset.port if security == "tls" else 143)
    host = ask.text(host, "IMAP server", None, "--host")
    security = ask.choice(security, "Security", SECURITY_MODES, "tls")
    port = ask.number(port, "Port", 993 if security == "tls" else 143)
    user = ask.text(user, "Login name (usually your address)", None, "--user")

    credential, source = _credential(
        ask,
        preset,
        {
            "password_env": password_env,
            "password_command": password_command,
            "password_keyring": password_keyring,
            "oauth2_token_command": oauth2_token_command,
        },
    )
    domains = ask.listing(
        own_domain, "Your organisation's mail domains, comma-separated", default_domains(user)
    )
    names = ask.listing(own_name, "Your names as vendors write them, comma-separated", ())
    prefix = ask.text(partner_prefix, "Folder prefix of trusted partners", "Vendors/", "")
    generic = ask.text(generic_folder, "Generic vendor bucket", "Vendors/Generic", "")
    keep = ask.listing(keep_folder, "Folders of mail that stays in the inbox", preset.keep)
    if ask.missing:
        raise click.UsageError(
            f"--non-interactive needs {', '.join(dict.fromkeys(ask.missing))} "
            "(or run triage init without --non-interactive to be asked)"
        )

    answers = Answers(
        host=host,
        user=user,
        credential=credential,
        source=source,
        port=port,
        security=security,
        name=account_name or "work",
        own_domains=domains,
        own_names=names,
        partner_prefix=prefix,
        generic=generic,
        keep=keep,
        state_dir=state_dir or "",
        ca_file=ca_file or "",
    )
    text = render_config(template(), answers)
    # Validated before writing, so a wrong answer never leaves a broken file behind.
    config = parse_config(text, f"{path} (not written)", base_dir=path.absolute().parent)
    if ask.interactive and not click.confirm(f"Write {path}?", default=True):
        raise click.Abort()
    write_config(path, text, overwrite=force)
    click.echo(f"Wrote {path} (readable only by you).")
    if credential == "password_keyring":
        click.echo(
            f"Store the password with: keyring set {shlex.quote(source)} {shlex.quote(user)}"
        )
    if not _is_default_location(path, getattr(ctx.obj, "config_path", None)):
        click.echo(f"Other commands find it with --config {path} (or export {CONFIG_ENV}={path}).")

    if no_test:
        click.echo("Next: `triage check` tests the connection.")
        return
    if credential in ("password_env", "password_keyring"):
        # Looked up first (cheap, no side effects): a variable not exported in this shell, or a
        # keyring entry not stored yet, is a next step for the user, not a failed test.
        try:
            resolve_secret(config.account())
        except ConfigError as exc:
            click.echo(f"Connection test skipped: {exc}")
            click.echo("Then run `triage check`.")
            return
    root = ctx.find_root().command
    command = root.get_command(ctx, "check") if isinstance(root, click.Group) else None
    if command is None:
        raise RuntimeError("triage init tests the connection with the CLI's `check` command")
    click.echo("Testing the connection...")
    try:
        ctx.invoke(command, account_name=config.account().name)
    except TriageError:
        click.echo(
            f"The config is saved; fix {path} (or run `triage init --force`), then run "
            "`triage check`.",
            err=True,
        )
        raise
    click.echo("Next: `triage train` learns from your folders.")


def _credential(
    ask: _Asker, preset: Preset, given: dict[CredentialKind, str | None]
) -> tuple[CredentialKind, str]:
    chosen = [(kind, value) for kind, value in given.items() if value is not None]
    if len(chosen) > 1:
        flags = " and ".join(_CREDENTIAL_FLAGS[kind] for kind, _ in chosen)
        raise click.UsageError(f"{flags}: give only one password or token source")
    if chosen:
        kind, value = chosen[0]
        return kind, (value or "").strip()
    names = {kind: name for name, kind in CREDENTIAL_CHOICES.items()}
    if ask.interactive:
        click.echo(
            "The password is never stored in the config. triage can read it from an "
            "environment variable (env), a command's output (command), the system keyring "
            "(keyring), or log in with an OAuth2 token a command prints (oauth2)."
        )
    picked = ask.choice(None, "Password source", list(CREDENTIAL_CHOICES), names[preset.credential])
    kind = CREDENTIAL_CHOICES[picked]
    prompt, default = _CREDENTIAL_PROMPTS[kind]
    check = _installed_command if kind in ("password_command", "oauth2_token_command") else None
    source = ask.text(
        None, prompt, default, _CREDENTIAL_FLAGS[kind] + " (or another source)", check
    )
    return kind, source


def _installed_command(text: str) -> str:
    """The command line as typed, if its program exists; asked again otherwise, because a
    password typed here by mistake would end up in the config."""
    try:
        argv = shlex.split(text)
    except ValueError:
        raise click.BadParameter("unbalanced quotes; type the command again") from None
    if not argv or shutil.which(argv[0]) is None:
        # Not echoed: what was typed may be the password itself.
        raise click.BadParameter(
            "no such program on PATH; give the command that prints it (a full path if needed)"
        )
    return text


def _is_default_location(path: Path, explicit: Path | None) -> bool:
    """True when other commands find `path` without being told: no --config was given to init
    and the path is the one $TRIAGE_CONFIG or the platform default names."""
    return (explicit is None or not str(explicit)) and path == target_path(None)

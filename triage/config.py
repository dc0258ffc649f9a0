"""The config file: find it, validate it once into frozen dataclasses, and resolve secrets.

The TOML is parsed with tomllib and checked in one pass that collects every problem, so the user
fixes the whole file in one edit. Each problem is one line that names the file, the key path
(`accounts[0].folders.generic`), what is wrong and the fix. Nothing downstream sees a raw dict.

Secrets never live in the config: an account names a source (an environment variable, a command,
the system keyring) and `resolve_secret` fetches the value into a `Secret`, whose repr and str do
not show it. Values of credential keys are never echoed in errors, and neither is a command's
stdout.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import shlex
import stat
import subprocess
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn, cast

import platformdirs

from triage.errors import ConfigError
from triage.mailbox.base import is_loopback

log = logging.getLogger(__name__)

APP_NAME = "triage"
CONFIG_ENV = "TRIAGE_CONFIG"
CONFIG_FILENAME = "config.toml"

LOG_LEVELS = ("debug", "info", "warning", "error")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
BACKENDS = ("imap", "maildir")
SECURITY_MODES = ("tls", "starttls", "plain")

Backend = Literal["imap", "maildir"]
Security = Literal["tls", "starttls", "plain"]
CredentialKind = Literal[
    "password_env", "password_command", "password_keyring", "oauth2_token_command"
]
CREDENTIAL_KEYS: tuple[CredentialKind, ...] = (
    "password_env",
    "password_command",
    "password_keyring",
    "oauth2_token_command",
)

# RFC 2177 lets a server drop a client that has idled for 30 minutes; re-IDLE before 29.
IDLE_REFRESH_MAX = 1739
SECRET_COMMAND_TIMEOUT = 30.0

# The keys each table accepts; anything else is a typo or a key from another version.
_TOP_KEYS = ("triage", "run", "accounts")
_TRIAGE_KEYS = ("state_dir", "log_level")
_RUN_KEYS = (
    "poll_interval",
    "idle_refresh",
    "batch_size",
    "move_batch",
    "max_message_bytes",
    "connect_timeout",
    "retrain_after",
    "retrain_margin",
    "keep_models",
    "digest_weekday",
    "digest_hour",
    "digest_folder",
    "digest_skip_empty",
    "digest_invoice_change",
    "digest_renewal_days",
    "digest_followup_days",
)
_IMAP_KEYS = ("host", "port", "security", "user", "ca_file", "allow_plaintext", *CREDENTIAL_KEYS)
_MAILDIR_KEYS = ("path",)
_ACCOUNT_KEYS = (
    "name",
    "backend",
    *_IMAP_KEYS,
    *_MAILDIR_KEYS,
    "own_domains",
    "own_addresses",
    "own_names",
    "never_move",
    "confidence_threshold",
    "folders",
    "rules",
)
_FOLDER_KEYS = ("inbox", "partner_prefix", "generic", "keep", "ignore")
_RULE_KEYS = ("from", "folder")

# Keys whose values may be (or, by mistake, contain) a secret: never shown in a message.
_SECRET_KEYS = frozenset({"password", *CREDENTIAL_KEYS})
_PASSWORD_KEY_MESSAGE = (
    "passwords are not stored in the config; remove this key and use password_env, "
    "password_command or password_keyring"
)

_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_TOML_POSITION = re.compile(r"(?P<message>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)")
_TOML_AT_END = re.compile(r"(?P<message>.*) \(at end of document\)")


# --- the validated config -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunConfig:
    """How `triage run` and the digest behave; the defaults here are the documented ones."""

    poll_interval: int = 60
    idle_refresh: int = 1500
    batch_size: int = 1000
    move_batch: int = 10000
    max_message_bytes: int = 262144
    connect_timeout: int = 30
    retrain_after: int = 20
    retrain_margin: float = 0.02
    keep_models: int = 5
    digest_weekday: str = "monday"
    digest_hour: int = 7
    digest_folder: str = "INBOX"
    digest_skip_empty: bool = False
    digest_invoice_change: int = 50  # percent off the vendor's recent average
    digest_renewal_days: int = 60
    digest_followup_days: int = 5

    @property
    def digest_weekday_number(self) -> int:
        """The digest's weekday as datetime.weekday() counts it (Monday is 0)."""
        return WEEKDAYS.index(self.digest_weekday)


@dataclass(frozen=True, slots=True)
class FolderConfig:
    """Folder names as the server spells them (decoded, with its hierarchy delimiter)."""

    inbox: str = "INBOX"
    partner_prefix: str = "Vendors/"
    generic: str = "Vendors/Generic"
    keep: tuple[str, ...] = ("Archive",)
    ignore: tuple[str, ...] = ()

    def is_partner(self, folder: str) -> bool:
        """True for a folder under partner_prefix other than the generic bucket."""
        return folder.startswith(self.partner_prefix) and folder != self.generic


@dataclass(frozen=True, slots=True)
class Rule:
    """A pin: mail from `sender` (a lower-cased address or "@domain") goes to `folder`."""

    sender: str
    folder: str

    def matches(self, address: str) -> bool:
        """True if `address` is this rule's sender or in its @domain."""
        address = address.lower()
        if self.sender.startswith("@"):
            return address.endswith(self.sender)
        return address == self.sender


@dataclass(frozen=True, slots=True)
class Credentials:
    """Where an account's password or OAuth2 token comes from (never the secret itself)."""

    kind: CredentialKind
    # Hidden from repr because a careless password_command may spell out the password.
    source: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """One mailbox. IMAP-only fields are None for a maildir account, and `path` is None for IMAP."""

    name: str
    backend: Backend
    host: str | None
    port: int | None
    security: Security | None
    user: str | None
    ca_file: Path | None
    allow_plaintext: bool
    credentials: Credentials | None
    path: Path | None
    own_domains: tuple[str, ...]
    own_addresses: tuple[str, ...]
    own_names: tuple[str, ...]
    never_move: tuple[str, ...]
    confidence_threshold: float
    folders: FolderConfig
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated config file."""

    path: Path | None
    state_dir: Path
    log_level: str
    run: RunConfig
    accounts: tuple[AccountConfig, ...]

    def account(self, name: str | None = None) -> AccountConfig:
        """The account called `name`; None means the only one (an error if there are several)."""
        names = [account.name for account in self.accounts]
        where = str(self.path) if self.path is not None else "the config"
        if name is None:
            if len(self.accounts) == 1:
                return self.accounts[0]
            raise ConfigError(
                f"{where}: several accounts are configured ({', '.join(names)}); "
                f"choose one with --account NAME"
            )
        for account in self.accounts:
            if account.name == name:
                return account
        # Names are unique regardless of case (they name files), so this match is unambiguous.
        for account in self.accounts:
            if account.name.casefold() == name.casefold():
                return account
        close = difflib.get_close_matches(name, names, n=1)
        hint = f'did you mean "{close[0]}"?' if close else f"the accounts are: {', '.join(names)}"
        raise ConfigError(f'{where}: no account named "{name}"; {hint}')


# --- finding, reading, writing --------------------------------------------------------------


def default_config_path() -> Path:
    """The platform's config location (~/.config/triage/config.toml on Linux)."""
    return Path(platformdirs.user_config_dir(APP_NAME)) / CONFIG_FILENAME


def find_config_path(explicit: str | Path | None = None) -> Path:
    """The config file to use: `--config`, else $TRIAGE_CONFIG, else the platform default.

    A path given explicitly that does not exist is an error; we never fall back to another file,
    because silently using a different config than the one asked for is worse than stopping.
    """
    env_value = os.environ.get(CONFIG_ENV, "")
    if explicit is not None and str(explicit) != "":
        candidate, origin = Path(explicit).expanduser(), "given with --config"
    elif env_value:
        candidate, origin = Path(env_value).expanduser(), f"from ${CONFIG_ENV}"
    else:
        candidate, origin = default_config_path(), "the default location"
    if candidate.is_file():
        return candidate
    if candidate.is_dir():
        raise ConfigError(
            f"{candidate} ({origin}) is a directory, not a config file; "
            f"pass the file itself, e.g. --config {candidate / CONFIG_FILENAME}"
        )
    raise ConfigError(
        f"no config file at {candidate} ({origin}); run `triage init` to create one, "
        f"or pass --config PATH"
    )


def load_config(path: str | Path) -> Config:
    """Read and validate the config file at `path`; raises ConfigError listing every problem."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file; run `triage init` to create it, or pass --config PATH"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (bad byte at offset {exc.start}); save the file as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read it ({exc.strerror}); check the path and its permissions"
        ) from None
    # A group-readable file holding a password is only reported alongside the error that
    # rejects the password key, since that key makes the file invalid anyway.
    notes = [note] if (note := check_permissions(path)) else []
    if warning := check_writable(path):
        log.warning("%s", warning)
    return _build(
        _parse_toml(text, str(path)),
        source=str(path),
        base_dir=path.absolute().parent,
        path=path,
        notes=notes,
    )


def parse_config(text: str, source: str = "<string>", *, base_dir: Path | None = None) -> Config:
    """Validate config text that is not (yet) in a file, e.g. in tests and `triage init`.

    Relative paths in it are taken relative to `base_dir` (default: the current directory).
    """
    return _build(
        _parse_toml(text, source),
        source=source,
        base_dir=(base_dir or Path.cwd()).absolute(),
        path=None,
        notes=[],
    )


def check_permissions(path: str | Path) -> str | None:
    """A warning when the file is readable by group or others and contains a `password` key.

    triage never needs a secret in the file, so only a `password` key (itself rejected by
    validation) makes a readable file worth warning about.
    """
    if os.name != "posix":
        return None  # mode bits do not describe who can read a file on Windows
    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # load_config reports a file it cannot read
    if not mode & (stat.S_IRGRP | stat.S_IROTH) or not _has_password_key(text):
        return None
    return (
        f"{path}: readable by other users (mode {stat.S_IMODE(mode):04o}) and contains a "
        f"password key; remove the key, change that password, and run: chmod 600 {path}"
    )


def check_writable(path: str | Path) -> str | None:
    """A warning when users other than the owner may change the config file.

    Reading it reveals no secret (validation refuses a password key), but whoever can write it
    can point `host` at their own server, which then receives the password, or set a
    password_command that runs their program as this user.
    """
    if os.name != "posix":
        return None
    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if not mode & (stat.S_IWGRP | stat.S_IWOTH):
        return None
    return (
        f"{path}: other users may change this file (mode {stat.S_IMODE(mode):04o}) and so "
        f"send your password to a server of their choosing; run: chmod 600 {path}"
    )


def write_config(path: str | Path, text: str, *, overwrite: bool = False) -> None:
    """Write a config file with mode 0600, creating its directory (0700) if needed.

    Refuses to replace an existing file unless `overwrite` is true; an overwrite goes through a
    temporary file and a rename, so a crash never leaves half a config behind.
    """
    path = Path(path).expanduser()
    data = text.encode("utf-8")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not overwrite:
            # O_EXCL makes "does it exist?" and "create it" one step, so nothing is clobbered.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(path, 0o600)  # the umask may have narrowed it, never widened; be exact
            return
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp_name, 0o600)
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
    except FileExistsError:
        raise ConfigError(
            f"{path}: already exists; edit it, or move it away and run `triage init` again"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot write it ({exc.strerror}); check the directory's permissions"
        ) from None


# --- secrets --------------------------------------------------------------------------------


class Secret:
    """A password or token. repr() and str() never show it; call reveal() where it is needed."""

    __slots__ = ("_is_oauth2", "_value")

    def __init__(self, value: str, *, is_oauth2: bool = False) -> None:
        self._value = value
        self._is_oauth2 = is_oauth2

    @property
    def is_oauth2(self) -> bool:
        """True for an OAuth2 access token (log in with XOAUTH2), false for a password."""
        return self._is_oauth2

    def reveal(self) -> str:
        """The secret itself; pass it straight to the login call, never to a log or message."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __reduce__(self) -> NoReturn:
        # Pickling would write the secret to disk (a cache, a model file); triage never stores it.
        raise TypeError("a Secret cannot be pickled")


def resolve_secret(account: AccountConfig, *, timeout: float = SECRET_COMMAND_TIMEOUT) -> Secret:
    """Fetch the account's password or OAuth2 token from its credential source.

    Raises ConfigError naming the source and the fix; the message never contains the secret or
    anything a password command printed on stdout.
    """
    credentials = account.credentials
    if credentials is None:
        raise ConfigError(
            f'account "{account.name}": backend "{account.backend}" has no credentials to resolve'
        )
    label = f'account "{account.name}" ({credentials.kind})'
    kind, source = credentials.kind, credentials.source
    if kind == "password_env":
        return Secret(_secret_from_env(label, source))
    if kind == "password_keyring":
        return Secret(_secret_from_keyring(label, source, account.user or ""))
    value = _secret_from_command(label, kind, source, timeout)
    return Secret(value, is_oauth2=kind == "oauth2_token_command")


def _secret_from_env(label: str, name: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise ConfigError(
            f"{label}: environment variable {name} is not set; export it in the environment "
            f"triage runs in (shell profile, systemd EnvironmentFile, cron line)"
        )
    if value == "":
        raise ConfigError(
            f"{label}: environment variable {name} is empty; set it to the account's password"
        )
    return value


def _secret_from_keyring(label: str, service: str, user: str) -> str:
    # Imported here: keyring discovers its backends at import, which costs ~75 ms per command.
    import keyring
    import keyring.errors

    try:
        value = keyring.get_password(service, user)
    except keyring.errors.KeyringError as exc:
        detail = _printable(str(exc)) or type(exc).__name__
        raise ConfigError(
            f"{label}: the system keyring is not usable ({detail}); install and unlock a "
            f"keyring (e.g. gnome-keyring or KWallet), or use password_env or password_command"
        ) from None
    if not value:
        raise ConfigError(
            f'{label}: no password stored for service "{service}" and user "{user}"; '
            f"store it with: keyring set {shlex.quote(service)} {shlex.quote(user)}"
        )
    return value


def _secret_from_command(label: str, kind: str, command: str, timeout: float) -> str:
    """Run a password/token command (no shell) and return the first line of its stdout."""
    argv = shlex.split(command)  # validation already rejected commands that do not split
    program = argv[0]
    failure: str | None = None
    try:
        proc = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        failure = f"command not found: {program}; install it or fix {kind}"
    except subprocess.TimeoutExpired:
        failure = (
            f"{program} did not finish within {timeout:g} s; run it by hand to see whether it "
            f"waits for input (it gets no terminal when triage runs it)"
        )
    except OSError as exc:
        failure = f"cannot run {program} ({exc.strerror}); fix {kind}"
    # Raised outside the except blocks so the ConfigError has no __context__: a TimeoutExpired
    # carries the command's partial stdout, which may be the secret.
    if failure is not None:
        raise ConfigError(f"{label}: {failure}")
    if proc.returncode != 0:
        status = (
            f"was killed by signal {-proc.returncode}"
            if proc.returncode < 0
            else f"exited with status {proc.returncode}"
        )
        last = _last_stderr_line(proc.stderr, proc.stdout)
        said = f": {last}" if last else ""
        raise ConfigError(f"{label}: {program} {status}{said}; run it by hand to see why")
    what = "token" if kind == "oauth2_token_command" else "password"
    try:
        lines: list[str] | None = proc.stdout.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        lines = None  # raised below, not here: the UnicodeDecodeError holds the whole stdout
    if lines is None:
        raise ConfigError(
            f"{label}: {program} printed something that is not UTF-8 text; it must print the "
            f"{what} as its first line"
        )
    first = lines[0] if lines else ""
    if kind == "oauth2_token_command":
        first = first.strip()  # tokens never contain spaces; passwords might, so keep those
    if not first:
        raise ConfigError(
            f"{label}: {program} printed nothing on its first line; it must print the "
            f"{what} as its first line"
        )
    return first


def _last_stderr_line(stderr: bytes, stdout: bytes) -> str:
    """The last non-blank stderr line, with anything the command printed on stdout masked."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    last = lines[-1]
    # Some tools echo their output on stderr too; whatever went to stdout may be the secret.
    for printed in stdout.decode("utf-8", "replace").splitlines():
        printed = printed.strip()
        if printed:
            last = last.replace(printed, "***")
    return _printable(last)


def _printable(text: str, limit: int = 200) -> str:
    """One line, no control characters (a terminal escape in a message could rewrite the screen)."""
    text = " ".join(text.split())
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- helpers shared by validation and callers -----------------------------------------------


def _is_domain(text: str) -> bool:
    try:
        ascii_form = text.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_form.split(".")
    return (
        len(ascii_form) <= 253
        and len(labels) >= 2
        and all(_DNS_LABEL.fullmatch(label) for label in labels)
    )


class _Invalid(Exception):
    """Raised by an item check; the message says what is wrong and how to fix it."""


def _domain(text: str) -> str:
    domain = text.strip().lower().removeprefix("@").rstrip(".")
    if not _is_domain(domain):
        raise _Invalid(f'"{text}" is not a domain name; write it like "example.com"')
    return domain


def _address(text: str) -> str:
    address = text.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or any(ch.isspace() for ch in local) or not _is_domain(domain):
        raise _Invalid(f'"{text}" is not an email address; write it like "jane@example.com"')
    return address


def _sender(text: str) -> str:
    """An address or "@domain", lower-cased."""
    value = text.strip().lower()
    if value.startswith("@"):
        if not _is_domain(value[1:]):
            raise _Invalid(f'"{text}" is not a valid @domain; write it like "@example.com"')
        return value
    if "@" not in value and _is_domain(value):
        raise _Invalid(
            f'"{text}" is a domain, not an address; write "@{value}" to match the whole domain'
        )
    try:
        return _address(value)
    except _Invalid:
        raise _Invalid(
            f'"{text}" is neither an address nor an @domain; '
            f'write it like "billing@example.com" or "@example.com"'
        ) from None


def _looks_like_address(text: str) -> bool:
    try:
        _address(text)
    except _Invalid:
        return False
    return True


def _resolve_path(text: str, base_dir: Path) -> Path:
    # Relative to the config file, not the cwd, so a cron job and a shell agree on the path.
    path = Path(text).expanduser()
    return path if path.is_absolute() else base_dir / path


# --- validation -----------------------------------------------------------------------------


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text.removeprefix("\ufeff"))  # editors on Windows add a BOM
    except tomllib.TOMLDecodeError as exc:
        # The offending line is not quoted back: it may be `password = hunter2`.
        message = str(exc)
        if match := _TOML_POSITION.fullmatch(message):
            line, column = match["line"], match["column"]
            raise ConfigError(
                f"{source}:{line}:{column}: invalid TOML: {match['message']}; "
                f"fix the syntax at line {line}, column {column}"
            ) from None
        if match := _TOML_AT_END.fullmatch(message):
            raise ConfigError(
                f"{source}: invalid TOML at the end of the file: {match['message']}; "
                f"look for an unclosed bracket or quote, or a key set twice"
            ) from None
        raise ConfigError(f"{source}: invalid TOML: {message}; fix the syntax") from None


def _has_password_key(text: str) -> bool:
    try:
        data: object = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError:
        return re.search(r"""^\s*["']?password["']?\s*=""", text, re.MULTILINE) is not None
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "password" in item:
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"  # the only other type TOML has


def _toml_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string for ordinary text
    return str(value)


def _describe(value: object, key: str) -> str:
    """The value's type, and the value itself when it is short and not under a credential key."""
    kind = _type_name(value)
    if key in _SECRET_KEYS or isinstance(value, list | dict):
        return kind
    shown = _printable(_toml_literal(value), limit=40)
    return f"{kind} ({shown})"


class _Problems:
    """Every problem found, one line each, raised together so the user fixes them in one go."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.lines.append(
            f"{self.source}: {where}: {message}" if where else f"{self.source}: {message}"
        )

    def raise_if_any(self) -> None:
        if len(self.lines) == 1:
            raise ConfigError(self.lines[0])
        if self.lines:
            head = (
                f"{self.source}: {len(self.lines)} problems; fix them all, then run triage again:"
            )
            raise ConfigError("\n".join([head, *self.lines]))


class _Table:
    """One TOML table under validation: typed getters that record problems instead of raising.

    A getter that finds a bad value records it and returns the default, so validation goes on
    and reports the rest of the file too.
    """

    def __init__(
        self, data: Mapping[str, Any], where: str, problems: _Problems, allowed: Iterable[str]
    ) -> None:
        self.data = data
        self.where = where
        self.problems = problems
        allowed = tuple(allowed)
        for key in data:
            if key not in allowed:
                self._unknown(key, allowed)

    def at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def add(self, key: str, message: str) -> None:
        self.problems.add(self.at(key), message)

    def _unknown(self, key: str, allowed: tuple[str, ...]) -> None:
        if key == "password":
            self.add(key, _PASSWORD_KEY_MESSAGE)
            return
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        hint = f'did you mean "{close[0]}"?' if close else f"valid keys: {', '.join(allowed)}"
        self.problems.add(self.where, f'unknown key "{key}"; {hint}')

    def _get(self, key: str, accept: tuple[type, ...], expected: str) -> Any:
        """The value if present and of an accepted type; None (after recording why) otherwise."""
        if key not in self.data:
            return None
        value = self.data[key]
        # bool is an int in Python but not in TOML: `port = true` is a mistake.
        if isinstance(value, accept) and not (isinstance(value, bool) and bool not in accept):
            return value
        message = f"expected {expected}, got {_describe(value, key)}"
        if isinstance(value, str) and str not in accept and key not in _SECRET_KEYS:
            try:
                unquoted = tomllib.loads(f"v = {value.strip()}")["v"]
            except tomllib.TOMLDecodeError:
                unquoted = None
            if isinstance(unquoted, accept) and not isinstance(unquoted, str):
                message += f"; remove the quotes: {key} = {value.strip()}"
        self.add(key, message)
        return None

    def required_string(self, key: str, fix: str) -> str | None:
        if key not in self.data:
            self.add(key, f"missing; {fix}")
            return None
        value = self._get(key, (str,), "a string")
        if value is None:
            return None
        value = cast(str, value).strip()
        if not value:
            self.add(key, f"is empty; {fix}")
            return None
        return value

    def string(self, key: str, default: str, *, allow_empty: bool = False) -> str:
        value = self._get(key, (str,), "a string")
        if value is None:
            return default
        value = cast(str, value).strip()
        if not value and not allow_empty:
            self.add(key, f"is empty; remove the key to use the default ({_toml_literal(default)})")
            return default
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self._get(key, (str,), "a string")
        if value is None:
            return default
        value = cast(str, value).strip().lower()
        if value in choices:
            return value
        options = ", ".join(f'"{choice}"' for choice in choices)
        close = difflib.get_close_matches(value, choices, n=1)
        hint = f'; did you mean "{close[0]}"?' if close else ""
        self.add(key, f"must be one of {options}, got {_describe(value, key)}{hint}")
        return default

    def integer(
        self, key: str, default: int, minimum: int, maximum: int | None = None, unit: str = ""
    ) -> int:
        value = self._get(key, (int,), "an integer")
        if value is None:
            return default
        value = cast(int, value)
        if value >= minimum and (maximum is None or value <= maximum):
            return value
        bound = f"at least {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        unit = f" {unit}" if unit else ""
        self.add(key, f"must be {bound}{unit}, got {value}; e.g. {key} = {default} (the default)")
        return default

    def fraction(self, key: str, default: float) -> float:
        """A number from 0 to 1 (an int such as 0 is accepted too)."""
        value = self._get(key, (int, float), "a number from 0 to 1")
        if value is None:
            return default
        number = float(cast(float, value))
        if 0.0 <= number <= 1.0:
            return number
        self.add(key, f"must be from 0 to 1, got {number}; e.g. {key} = {default} (the default)")
        return default

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, (bool,), "a boolean (true or false)")
        return default if value is None else cast(bool, value)

    def string_list(
        self,
        key: str,
        default: tuple[str, ...],
        item: Callable[[str], str] | None = None,
    ) -> tuple[str, ...]:
        """An array of non-empty strings, each passed through `item` (which may raise _Invalid)."""
        if key not in self.data:
            return default
        value = self.data[key]
        if isinstance(value, str):
            self.add(
                key,
                f"expected an array of strings, got a string; write {key} = "
                f"[{_toml_literal(value)}]",
            )
            return default
        if not isinstance(value, list):
            self.add(key, f"expected an array of strings, got {_describe(value, key)}")
            return default
        items: list[str] = []
        for index, element in enumerate(value):
            where = f"{self.at(key)}[{index}]"
            if not isinstance(element, str):
                self.problems.add(where, f"expected a string, got {_describe(element, key)}")
            elif not element.strip():
                self.problems.add(where, "is empty; remove it")
            else:
                try:
                    items.append(item(element) if item else element.strip())
                except _Invalid as exc:
                    self.problems.add(where, str(exc))
        return tuple(dict.fromkeys(items))  # drop repeats, keep the user's order

    def table(self, key: str) -> Mapping[str, Any]:
        value = self._get(key, (dict,), f"a table ([{self.at(key)}])")
        return cast("Mapping[str, Any]", value) if value is not None else {}

    def table_array(self, key: str) -> list[tuple[str, Mapping[str, Any]]]:
        """The tables of an array of tables, each with its key path (`accounts[0]`)."""
        if key not in self.data:
            return []
        value = self.data[key]
        if isinstance(value, dict):
            self.add(
                key,
                f"expected an array of tables, got a table; write [[{self.at(key)}]] with two "
                f"brackets (one block per entry)",
            )
            return []
        if not isinstance(value, list):
            self.add(
                key, f"expected an array of tables ([[{self.at(key)}]]), got {_type_name(value)}"
            )
            return []
        tables: list[tuple[str, Mapping[str, Any]]] = []
        for index, element in enumerate(value):
            where = f"{self.at(key)}[{index}]"
            if isinstance(element, dict):
                tables.append((where, element))
            else:
                self.problems.add(where, f"expected a table, got {_type_name(element)}")
        return tables


def _build(
    data: dict[str, Any], *, source: str, base_dir: Path, path: Path | None, notes: list[str]
) -> Config:
    problems = _Problems(source)
    top = _Table(data, "", problems, _TOP_KEYS)

    settings = _Table(top.table("triage"), "triage", problems, _TRIAGE_KEYS)
    state_dir_text = settings.string("state_dir", "", allow_empty=True)
    state_dir = (
        _resolve_path(state_dir_text, base_dir)
        if state_dir_text
        else Path(platformdirs.user_state_dir(APP_NAME))
    )
    log_level = settings.choice("log_level", "info", LOG_LEVELS)

    run = _run_config(_Table(top.table("run"), "run", problems, _RUN_KEYS))
    accounts = _accounts(top, problems, base_dir)

    problems.lines.extend(notes)
    problems.raise_if_any()
    return Config(path=path, state_dir=state_dir, log_level=log_level, run=run, accounts=accounts)


def _run_config(t: _Table) -> RunConfig:
    d = RunConfig()  # the defaults live in one place: the dataclass
    idle_refresh = t.integer("idle_refresh", d.idle_refresh, 30, IDLE_REFRESH_MAX, "seconds")
    return RunConfig(
        poll_interval=t.integer("poll_interval", d.poll_interval, 5, None, "seconds"),
        idle_refresh=idle_refresh,
        batch_size=t.integer("batch_size", d.batch_size, 1, 5000, "UIDs"),
        move_batch=t.integer("move_batch", d.move_batch, 1, 100000, "messages"),
        max_message_bytes=t.integer(
            "max_message_bytes", d.max_message_bytes, 4096, 52428800, "bytes"
        ),
        connect_timeout=t.integer("connect_timeout", d.connect_timeout, 1, 600, "seconds"),
        retrain_after=t.integer("retrain_after", d.retrain_after, 1, None, "corrections"),
        retrain_margin=t.fraction("retrain_margin", d.retrain_margin),
        keep_models=t.integer("keep_models", d.keep_models, 1, None),
        digest_weekday=t.choice("digest_weekday", d.digest_weekday, WEEKDAYS),
        digest_hour=t.integer("digest_hour", d.digest_hour, 0, 23),
        digest_folder=t.string("digest_folder", d.digest_folder),
        digest_skip_empty=t.boolean("digest_skip_empty", d.digest_skip_empty),
        digest_invoice_change=t.integer(
            "digest_invoice_change", d.digest_invoice_change, 5, 1000, "percent"
        ),
        digest_renewal_days=t.integer("digest_renewal_days", d.digest_renewal_days, 1, 366, "days"),
        digest_followup_days=t.integer(
            "digest_followup_days", d.digest_followup_days, 1, 90, "days"
        ),
    )


def _accounts(top: _Table, problems: _Problems, base_dir: Path) -> tuple[AccountConfig, ...]:
    if "accounts" not in top.data or top.data["accounts"] == []:
        problems.add(
            "accounts",
            "no account is configured; add an [[accounts]] table (see config.example.toml)",
        )
        return ()
    accounts: list[AccountConfig] = []
    seen: dict[str, str] = {}
    for where, data in top.table_array("accounts"):
        account = _account(_Table(data, where, problems, _ACCOUNT_KEYS), base_dir)
        if account is None:
            continue
        # Case-insensitive because the name becomes a file name, and macOS folds case.
        folded = account.name.casefold()
        if folded in seen:
            problems.add(
                f"{where}.name",
                f'"{account.name}" is already used by {seen[folded]}; account names must be '
                f"unique (ignoring case) because they name the state files",
            )
        else:
            seen[folded] = where
        accounts.append(account)
    return tuple(accounts)


def _account(t: _Table, base_dir: Path) -> AccountConfig | None:
    """Validate one [[accounts]] table; None when the name or backend is unusable."""
    name = t.required_string("name", 'give the account a short name, e.g. name = "work"')
    if name is not None and (not _ACCOUNT_NAME.fullmatch(name) or name in {".", ".."}):
        t.add(
            "name",
            f'"{name}" may only contain letters, digits, "_", "." and "-" (it is used in file '
            f'names); e.g. name = "work"',
        )
        name = None
    backend: str | None = None
    if "backend" in t.data:
        # An invalid backend is reported by choice(); None then skips the backend's own checks.
        backend = t.choice("backend", "", BACKENDS) or None
    else:
        t.add("backend", 'missing; add backend = "imap" or backend = "maildir"')

    host: str | None = None
    port: int | None = None
    security: Security | None = None
    user: str | None = None
    ca_file: Path | None = None
    credentials: Credentials | None = None
    path: Path | None = None
    allow_plaintext = False
    if backend == "imap":
        for key in _MAILDIR_KEYS:
            if key in t.data:
                t.add(key, 'only used by backend = "maildir"; remove it from this IMAP account')
        host = _host(t)
        security = cast(Security, t.choice("security", "tls", SECURITY_MODES))
        port = t.integer("port", 993 if security == "tls" else 143, 1, 65535)
        user = t.required_string("user", 'add the login name, e.g. user = "jane@example.com"')
        ca_text = t.string("ca_file", "", allow_empty=True)
        if ca_text:
            ca_file = _resolve_path(ca_text, base_dir)
            if not ca_file.is_file():
                t.add(
                    "ca_file",
                    f"no such file: {ca_file}; give the path of a PEM certificate bundle, or "
                    f"remove ca_file to trust only the system's certificates",
                )
        allow_plaintext = t.boolean("allow_plaintext", False)
        credentials = _credentials(t)
        if security == "plain" and host and not allow_plaintext and not is_loopback(host):
            t.add(
                "security",
                f'"plain" would send the password unencrypted to {host}; use security = "tls" '
                f'(port 993) or "starttls" (port 143), or set allow_plaintext = true to accept '
                f"the risk",
            )
    elif backend == "maildir":
        for key in _IMAP_KEYS:
            if key in t.data:
                t.add(key, 'only used by backend = "imap"; remove it from this maildir account')
        path_text = t.required_string(
            "path", 'give the Maildir++ root of this account, e.g. path = "~/Mail/work"'
        )
        path = _resolve_path(path_text, base_dir) if path_text else None

    default_addresses = (user.lower(),) if user and _looks_like_address(user) else ()
    threshold = _threshold(t)
    folders = _folders(_Table(t.table("folders"), t.at("folders"), t.problems, _FOLDER_KEYS))
    never_move = t.string_list("never_move", (), _sender)
    rules = _rules(t, folders, never_move)
    own_domains = t.string_list("own_domains", (), _domain)
    own_addresses = t.string_list("own_addresses", default_addresses, _address)
    own_names = t.string_list("own_names", ())

    if name is None or backend is None:
        return None
    return AccountConfig(
        name=name,
        backend=cast(Backend, backend),
        host=host,
        port=port,
        security=security,
        user=user,
        ca_file=ca_file,
        allow_plaintext=allow_plaintext,
        credentials=credentials,
        path=path,
        own_domains=own_domains,
        own_addresses=own_addresses,
        own_names=own_names,
        never_move=never_move,
        confidence_threshold=threshold,
        folders=folders,
        rules=rules,
    )


def _host(t: _Table) -> str | None:
    host = t.required_string("host", 'add the IMAP server name, e.g. host = "imap.example.com"')
    if host is None:
        return None
    if "://" in host:
        t.add(
            "host", f'"{host}" is a URL; give only the server name, e.g. host = "imap.example.com"'
        )
        return None
    name, colon, maybe_port = host.rpartition(":")
    if colon and maybe_port.isdigit() and ":" not in name:
        t.add("host", f'"{host}" includes a port; write host = "{name}" and port = {maybe_port}')
        return None
    if any(ch.isspace() for ch in host) or "/" in host:
        t.add("host", f'"{host}" is not a host name; e.g. host = "imap.example.com"')
        return None
    return host


def _credentials(t: _Table) -> Credentials | None:
    present = [key for key in CREDENTIAL_KEYS if key in t.data]
    if not present:
        t.problems.add(
            t.where,
            "no credential source; set exactly one of password_env, password_command, "
            "password_keyring or oauth2_token_command (see config.example.toml)",
        )
        return None
    if len(present) > 1:
        t.problems.add(
            t.where, f"several credential sources ({', '.join(present)}); keep exactly one"
        )
        return None
    kind = present[0]
    source = t.required_string(kind, "remove it or give it a value")
    if source is None:
        return None
    if kind == "password_env" and not _ENV_NAME.fullmatch(source):
        # Not echoed: a user who misread the key may have written the password itself here.
        t.add(
            kind,
            "must be the NAME of an environment variable (letters, digits and _), not the "
            'password; e.g. password_env = "TRIAGE_PASSWORD"',
        )
        return None
    if kind in ("password_command", "oauth2_token_command"):
        try:
            argv = shlex.split(source)
        except ValueError:
            t.add(kind, "is not a valid command line (unbalanced quotes?); fix its quoting")
            return None
        if not argv:
            t.add(kind, 'is empty; give a command, e.g. password_command = "pass show mail/work"')
            return None
    return Credentials(kind=kind, source=source)


def _threshold(t: _Table) -> float:
    default = 0.5
    value = t._get("confidence_threshold", (int, float), "a number between 0 and 1")
    if value is None:
        return default
    if not 0 < value < 1:  # also false for nan
        t.add(
            "confidence_threshold",
            f"must be between 0 and 1 (exclusive), got {value}; e.g. confidence_threshold = 0.5",
        )
        return default
    return float(value)


def _same_folder(a: str, b: str) -> bool:
    # IMAP treats INBOX case-insensitively and every other name case-sensitively (RFC 3501).
    return a == b or (a.upper() == "INBOX" and b.upper() == "INBOX")


def _folders(t: _Table) -> FolderConfig:
    d = FolderConfig()
    inbox = t.string("inbox", d.inbox)
    prefix = t.string("partner_prefix", d.partner_prefix)
    generic = t.string("generic", d.generic)
    keep = t.string_list("keep", d.keep)
    ignore = t.string_list("ignore", d.ignore)
    folders = FolderConfig(
        inbox=inbox, partner_prefix=prefix, generic=generic, keep=keep, ignore=ignore
    )

    if _same_folder(generic, inbox):
        t.add(
            "generic", f'is the inbox ("{inbox}"); the generic bucket must be a folder of its own'
        )
    for index, folder in enumerate(keep):
        where = f"{t.at('keep')}[{index}]"
        if _same_folder(folder, generic):
            t.problems.add(where, f'"{folder}" is the generic bucket; remove it from keep')
        elif folders.is_partner(folder):
            t.problems.add(
                where,
                f'"{folder}" is under partner_prefix "{prefix}", so it is a partner folder; '
                f"remove it from keep or move the folder",
            )
    for index, folder in enumerate(ignore):
        where = f"{t.at('ignore')}[{index}]"
        if _same_folder(folder, inbox) or _same_folder(folder, generic):
            t.problems.add(where, f'"{folder}" must be read by triage; remove it from ignore')
        elif any(_same_folder(folder, kept) for kept in keep):
            t.problems.add(where, f'"{folder}" is also in keep; remove it from one of the two')
    return folders


def _rules(t: _Table, folders: FolderConfig, never_move: tuple[str, ...]) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for where, data in t.table_array("rules"):
        rule = _Table(data, where, t.problems, _RULE_KEYS)
        sender: str | None = None
        raw_sender = data.get("from")
        if isinstance(raw_sender, list):
            rule.add(
                "from", "expected one address or @domain, got an array; write one rule per sender"
            )
        else:
            text = rule.required_string("from", 'add the sender, e.g. from = "billing@acme.com"')
            if text is not None:
                try:
                    sender = _sender(text)
                except _Invalid as exc:
                    rule.add("from", str(exc))
        folder = rule.required_string("folder", 'add the destination, e.g. folder = "Vendors/Acme"')
        if folder is not None and _same_folder(folder, "INBOX"):
            folder = folders.inbox  # "INBOX" in a rule means "keep", whatever the inbox is called
        if sender is None or folder is None:
            continue
        if sender in seen:
            rule.add("from", f'"{sender}" already has a rule ({seen[sender]}); keep one of them')
            continue
        if sender in never_move and not _same_folder(folder, folders.inbox):
            rule.add(
                "from",
                f'"{sender}" is also in never_move; remove it from one of the two',
            )
            continue
        seen[sender] = where
        rules.append(Rule(sender=sender, folder=folder))
    return tuple(rules)

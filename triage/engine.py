"""What the commands do, beneath the command line: open a mailbox, give folders their roles.

cli.py parses options and prints; this module does the work and returns data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from triage.config import AccountConfig, Config, FolderConfig, RunConfig, resolve_secret
from triage.errors import ConfigError, MailboxError, ModelError
from triage.mailbox.base import CAPABILITIES_THAT_MATTER, Folder, Mailbox
from triage.mailbox.imap import ImapMailbox
from triage.mailbox.maildir import MaildirMailbox
from triage.message import Message, parse
from triage.model import KEEP as KEEP_LABEL
from triage.model import Identity, TriageModel

log = logging.getLogger(__name__)

# Folder roles: what triage does with each folder.
INBOX, PARTNER, GENERIC, KEEP, IGNORED = "inbox", "partner", "generic", "keep", "ignored"
# Special-use folders never hold examples of anything the buyer wants filed.
_NEVER_READ = {"sent", "drafts", "trash", "junk", "all", "flagged"}


@dataclass(frozen=True, slots=True)
class FolderRole:
    folder: Folder
    role: str
    why: str


def open_mailbox(account: AccountConfig, run: RunConfig) -> Mailbox:
    """The account's mailbox, not yet connected (use it as a context manager)."""
    if account.backend == "maildir":
        if account.path is None:
            raise ConfigError(f"account {account.name!r}: the maildir backend needs a path")
        return MaildirMailbox(account.path)
    if account.host is None or account.user is None or account.credentials is None:
        raise ConfigError(
            f"account {account.name!r}: the imap backend needs host, user and a "
            "password or token source"
        )
    oauth2 = account.credentials.kind == "oauth2_token_command"
    return ImapMailbox(
        account.host,
        account.user,
        lambda: resolve_secret(account).reveal(),
        port=account.port,
        security=account.security or "tls",
        oauth2=oauth2,
        ca_file=account.ca_file,
        allow_plaintext=account.allow_plaintext,
        timeout=run.connect_timeout,
        idle_refresh=run.idle_refresh,
        poll_interval=run.poll_interval,
    )


def folder_roles(folders: Iterable[Folder], config: FolderConfig) -> list[FolderRole]:
    """The role of each folder under the account's folder settings, in listing order."""
    keep = set(config.keep)
    ignore = set(config.ignore)
    prefix = config.partner_prefix
    roles = []
    for folder in folders:
        name = folder.name
        if not folder.selectable:
            role, why = IGNORED, "not selectable (a parent only)"
        elif name.upper() == config.inbox.upper() or (folder.role == "inbox" and name == "INBOX"):
            role, why = INBOX, "watched for new mail"
        elif name in ignore:
            role, why = IGNORED, "listed in folders.ignore"
        elif name == config.generic:
            role, why = GENERIC, "folders.generic"
        elif name in keep:
            role, why = KEEP, "listed in folders.keep"
        elif folder.role in _NEVER_READ:
            role, why = IGNORED, f"special-use \\{folder.role.capitalize()}"
        elif prefix and name.startswith(prefix) and len(name) > len(prefix):
            role, why = PARTNER, f"under {prefix}"
        else:
            role, why = IGNORED, "not under the partner prefix, generic or keep"
        roles.append(FolderRole(folder, role, why))
    return roles


@dataclass(frozen=True, slots=True)
class CheckReport:
    where: str
    capabilities: dict[str, bool]
    roles: list[FolderRole]
    notes: list[str]


def check(account: AccountConfig, run: RunConfig) -> CheckReport:
    """Connect, log in, and say what triage would make of this mailbox."""
    mailbox = open_mailbox(account, run)
    with mailbox:
        folders = mailbox.list_folders()
        capabilities = {name: name in mailbox.capabilities for name in CAPABILITIES_THAT_MATTER}
    if isinstance(mailbox, ImapMailbox):
        where = f"{mailbox.where} as {mailbox.user} ({mailbox.security})"
    elif isinstance(mailbox, MaildirMailbox):
        where = f"Maildir {mailbox.root}"
    else:
        where = type(mailbox).__name__
    roles = folder_roles(folders, account.folders)
    notes = []
    names = {r.folder.name for r in roles}
    if account.folders.generic not in names:
        notes.append(
            f"the generic bucket {account.folders.generic!r} does not exist yet; "
            "triage creates it when it first files there"
        )
    if not any(r.role == PARTNER for r in roles):
        notes.append(
            f"no partner folders under {account.folders.partner_prefix!r}; create one "
            "folder per trusted partner there (or set folders.partner_prefix)"
        )
    if isinstance(mailbox, ImapMailbox):
        if not capabilities["MOVE"]:
            notes.append(
                "the server has no MOVE: triage copies, flags \\Deleted and expunges "
                "exactly the copied messages"
                + (
                    ""
                    if capabilities["UIDPLUS"]
                    else " (without UIDPLUS only when nothing else is flagged \\Deleted)"
                )
            )
        if not capabilities["IDLE"]:
            notes.append(f"the server has no IDLE: triage polls every {run.poll_interval:g} s")
    return CheckReport(where, capabilities, roles, notes)


# -- training ----------------------------------------------------------------------------------

#: Per-message cap when reading mail to train on: headers plus the start of the body is enough.
TRAIN_MAX_BYTES = 65536
#: The newest messages read per folder: enough to learn from, bounded for huge archives.
TRAIN_MAX_PER_FOLDER = 5000


@dataclass(frozen=True, slots=True)
class TrainReport:
    path: Path
    messages: int
    counts: dict[str, int]
    scores: dict[str, Any]


def identity_of(account: AccountConfig) -> Identity:
    return Identity(
        addresses=tuple(account.own_addresses),
        domains=tuple(account.own_domains),
        names=tuple(account.own_names),
    )


def is_own(message: Message, account: AccountConfig) -> bool:
    """Mail from the buyer's own domains always stays in the inbox."""
    domain = message.sender_domain
    return bool(domain) and any(
        domain == own or domain.endswith("." + own) for own in account.own_domains
    )


def _label_for(role: FolderRole) -> str | None:
    if role.role in (PARTNER, GENERIC):
        return role.folder.name
    if role.role == KEEP:
        return KEEP_LABEL
    return None


def collect_examples(
    mailbox: Mailbox,
    account: AccountConfig,
    *,
    progress: Callable[[int, int], None] | None = None,
    per_folder: int = TRAIN_MAX_PER_FOLDER,
) -> tuple[list[Message], list[str]]:
    """Every labelled message in the account's folders: partner, generic, keep, and the inbox's
    mail from the buyer's own domains (also keep)."""
    roles = folder_roles(mailbox.list_folders(), account.folders)
    plan: list[tuple[FolderRole, list[int]]] = []
    for role in roles:
        if role.role == INBOX or _label_for(role) is not None:
            mailbox.select(role.folder.name)
            plan.append((role, mailbox.uids_above(0)[-per_folder:]))
    total = sum(len(uids) for _, uids in plan)
    messages: list[Message] = []
    labels: list[str] = []
    done = 0
    for role, uids in plan:
        if not uids:
            continue
        mailbox.select(role.folder.name)
        label = _label_for(role)
        for fetched in mailbox.fetch(uids, max_bytes=TRAIN_MAX_BYTES):
            message = parse(fetched.data, key=f"{role.folder.name}/{fetched.uid}")
            done += 1
            if role.role == INBOX:
                if is_own(message, account):
                    messages.append(message)
                    labels.append(KEEP_LABEL)
            elif label is not None:
                messages.append(message)
                labels.append(label)
            if progress and (done % 200 == 0 or done == total):
                progress(done, total)
    if progress:
        progress(total, total)
    return messages, labels


def model_dir(config: Config, account: AccountConfig) -> Path:
    return config.state_dir / "models" / account.name


def train(
    config: Config,
    account: AccountConfig,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> TrainReport:
    """Learn the buyer's filing from their folders and save the model as the current one."""
    with open_mailbox(account, config.run) as mailbox:
        messages, labels = collect_examples(mailbox, account, progress=progress)
    partners = [
        label for label in set(labels) if label not in (KEEP_LABEL, account.folders.generic)
    ]
    if not partners:
        raise ModelError(
            f"account {account.name!r}: no mail in partner folders under "
            f"{account.folders.partner_prefix!r}; file some mail there (or set "
            "folders.partner_prefix) and train again"
        )
    model = TriageModel.train(
        messages, labels, identity=identity_of(account), generic=account.folders.generic
    )
    directory = model_dir(config, account)
    name = datetime.now(UTC).strftime("model-%Y%m%dT%H%M%S")
    path = model.save(directory, name)
    _write_current(directory, path.name)
    return TrainReport(path, len(messages), dict(model.counts), dict(model.scores))


def _write_current(directory: Path, filename: str) -> None:
    tmp = directory / "current.tmp"
    tmp.write_text(filename + "\n")
    tmp.replace(directory / "current")


def current_model_path(config: Config, account: AccountConfig) -> Path:
    directory = model_dir(config, account)
    try:
        name = (directory / "current").read_text().strip()
    except FileNotFoundError:
        raise ModelError(
            f"account {account.name!r} has no trained model yet; run `triage train`"
        ) from None
    return directory / name


def load_model(config: Config, account: AccountConfig) -> TriageModel:
    return TriageModel.load(current_model_path(config, account))


def read_message(config: Config, account: AccountConfig, folder: str, uid: int) -> Message:
    """One message from the mailbox, as the model sees it."""
    with open_mailbox(account, config.run) as mailbox:
        mailbox.select(folder)
        found = list(mailbox.fetch([uid], max_bytes=config.run.max_message_bytes))
    if not found:
        raise MailboxError(f"no message with UID {uid} in folder {folder!r}")
    return parse(found[0].data, key=f"{folder}/{uid}")


def parse_file(path: Path) -> Message:
    """A message file (RFC 822 bytes) as the model sees it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MailboxError(f"{path}: cannot read ({exc.strerror})") from None
    return parse(data, key=str(path))

"""What the commands do, beneath the command line: open a mailbox, give folders their roles.

cli.py parses options and prints; this module does the work and returns data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from triage.config import AccountConfig, FolderConfig, RunConfig, resolve_secret
from triage.errors import ConfigError
from triage.mailbox.base import CAPABILITIES_THAT_MATTER, Folder, Mailbox
from triage.mailbox.imap import ImapMailbox
from triage.mailbox.maildir import MaildirMailbox

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

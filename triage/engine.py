"""What the commands do, beneath the command line: open a mailbox, give folders their roles.

cli.py parses options and prints; this module does the work and returns data.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from triage import digest as weekly
from triage.config import AccountConfig, Config, FolderConfig, RunConfig, resolve_secret
from triage.errors import ConfigError, MailboxError, ModelError
from triage.facts import extract as extract_facts
from triage.learn import (
    CORRECTION,
    HAND_FILED,
    Arrival,
    RetrainPolicy,
    SenderMemory,
    classify_arrival,
    settle_memory,
)
from triage.mailbox.base import CAPABILITIES_THAT_MATTER, Folder, FolderState, Mailbox, chunked
from triage.mailbox.imap import ImapMailbox
from triage.mailbox.maildir import MaildirMailbox
from triage.message import Message, parse
from triage.message import from_bytes as message_from_bytes
from triage.message import to_bytes as message_bytes
from triage.model import KEEP as KEEP_LABEL
from triage.model import Identity, TriageModel
from triage.planner import (
    MOVED_BACK,
    Planned,
    Planner,
    from_own_domain,
    header_hash,
    summarise,
)
from triage.store import (
    DONE,
    FAILED,
    FILED,
    INTENT,
    INTERRUPTED,
    TRAINED,
    UNDONE,
    VANISHED,
    AccountLock,
    Decision,
    Example,
    FactRecord,
    Filing,
    MailRecord,
    Run,
    Store,
    iso,
)

log = logging.getLogger(__name__)

#: Seconds between looks for the buyer's moves in the partner folders while `run` stays up.
LEARN_EVERY = 300.0
#: Longest wait between passes even when IDLE reports nothing: a cheap guard (one UID SEARCH)
#: against a notification that fell between a pass and the next IDLE.
MAX_QUIET = 300.0

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


def role_of(folders: FolderConfig, folder: str) -> str:
    """The digest's bucket for mail in `folder`: partner, generic, or keep (anything else)."""
    if folder == folders.generic:
        return weekly.GENERIC
    if folders.is_partner(folder):
        return weekly.PARTNER
    return weekly.KEEP


def digest_records(
    account: AccountConfig, items: Iterable[tuple[Message, str, str]], *, seen: datetime
) -> tuple[list[MailRecord], list[FactRecord]]:
    """What the digest keeps of each (message, header hash, folder it is in), with the facts
    found in it: also of mail left in the inbox (a vendor's termination notice triage was not
    sure enough to file still gets flagged, and a colleague's mail counts only for what it
    forwards from a vendor)."""
    # "@domain" entries make facts.extract treat mail from the buyer's domains as internal.
    buyer = (*account.own_addresses, *(f"@{domain}" for domain in account.own_domains))
    records: list[MailRecord] = []
    found: list[FactRecord] = []
    for message, digest, folder in items:
        role = role_of(account.folders, folder)
        records.append(weekly.mail_record(message, digest, folder, role, seen=seen))
        facts = extract_facts(
            message, buyer_names=account.own_names, buyer_addresses=buyer, now=seen
        )
        found.extend(weekly.fact_records(digest, facts))
    return records, found


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
) -> tuple[list[Message], list[str], list[str]]:
    """Every labelled message in the account's folders (partner, generic, keep, and the inbox's
    mail from the buyer's own domains, also keep), with the header hash of each."""
    roles = folder_roles(mailbox.list_folders(), account.folders)
    plan: list[tuple[FolderRole, list[int]]] = []
    for role in roles:
        if role.role == INBOX or _label_for(role) is not None:
            mailbox.select(role.folder.name)
            plan.append((role, mailbox.uids_above(0)[-per_folder:]))
    total = sum(len(uids) for _, uids in plan)
    messages: list[Message] = []
    labels: list[str] = []
    hashes: list[str] = []
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
                if from_own_domain(message, account.own_domains):
                    messages.append(message)
                    labels.append(KEEP_LABEL)
                    hashes.append(header_hash(fetched.data))
            elif label is not None:
                messages.append(message)
                labels.append(label)
                hashes.append(header_hash(fetched.data))
            if progress and (done % 200 == 0 or done == total):
                progress(done, total)
    if progress:
        progress(total, total)
    return messages, labels, hashes


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
        messages, labels, hashes = collect_examples(mailbox, account, progress=progress)
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
    with _open_store(config) as store:  # kept so that retraining never re-reads the mailbox
        store.replace_trained(
            account.name,
            [
                Example(digest, m.sender, label, TRAINED, None, message_bytes(m))
                for m, label, digest in zip(messages, labels, hashes, strict=True)
            ],
        )
        # The history the digest compares this week with (invoices, first contact).
        records, found = digest_records(
            account,
            (
                (m, digest, label)
                for m, label, digest in zip(messages, labels, hashes, strict=True)
                if label != KEEP_LABEL
            ),
            seen=datetime.now(UTC),
        )
        store.record_mail(account.name, records, found, replace=False)
    return _save_as_current(config, account, model, len(messages))


def _save_as_current(
    config: Config, account: AccountConfig, model: TriageModel, messages: int
) -> TrainReport:
    directory = model_dir(config, account)
    # Names sort by time (prune and rollback rely on it), microseconds keep them unique.
    name = datetime.now(UTC).strftime("model-%Y%m%dT%H%M%S_%f")
    path = model.save(directory, name)
    _write_current(directory, path.name)
    prune_models(directory, config.run.keep_models)
    return TrainReport(path, messages, dict(model.counts), dict(model.scores))


def _write_current(directory: Path, filename: str) -> None:
    tmp = directory / "current.tmp"
    _write_private(tmp, filename + "\n")
    tmp.replace(directory / "current")


@dataclass(frozen=True, slots=True)
class ModelVersion:
    path: Path
    trained_at: str
    messages: int
    holdout_accuracy: float | None
    current: bool


def _versions(directory: Path) -> list[Path]:
    """Saved models, oldest first (names are timestamps)."""
    return sorted(directory.glob("model-*.joblib")) if directory.is_dir() else []


def prune_models(directory: Path, keep: int) -> None:
    """Delete all but the newest `keep` models; the current one is always kept."""
    try:
        current = (directory / "current").read_text().strip()
    except FileNotFoundError:
        current = ""
    for path in _versions(directory)[:-keep] if keep > 0 else []:
        if path.name != current:
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)
            log.info("removed old model %s", path.name)


def list_models(config: Config, account: AccountConfig) -> list[ModelVersion]:
    """The saved model versions, newest first, with the one in use marked."""
    directory = model_dir(config, account)
    current = _current_or_none(config, account)
    out = []
    for path in reversed(_versions(directory)):
        try:
            sidecar = json.loads(path.with_suffix(".json").read_text())
        except (OSError, ValueError):
            sidecar = {}
        holdout = (sidecar.get("scores") or {}).get("holdout") or {}
        out.append(
            ModelVersion(
                path,
                str(sidecar.get("trained_at", "?")),
                sum((sidecar.get("counts") or {}).values()),
                holdout.get("accuracy"),
                path == current,
            )
        )
    return out


def rollback(config: Config, account: AccountConfig, name: str | None = None) -> Path:
    """Make an earlier model the current one: `name`, or the one before the current."""
    directory = model_dir(config, account)
    versions = _versions(directory)
    current = _current_or_none(config, account)
    if name is not None:
        wanted = directory / (name if name.endswith(".joblib") else f"{name}.joblib")
        if wanted not in versions:
            names = ", ".join(p.stem for p in reversed(versions)) or "none"
            raise ModelError(
                f"no saved model {name!r} for account {account.name!r}; "
                f"saved: {names} (see `triage model list`)"
            )
    else:
        older = [p for p in versions if current is None or p.name < current.name]
        if not older:
            raise ModelError(
                f"account {account.name!r} has no model older than the current one to roll back to"
            )
        wanted = older[-1]
    TriageModel.load(wanted)  # refuse to switch to a file that would not load
    _write_current(directory, wanted.name)
    log.info("account %s now uses model %s", account.name, wanted.name)
    return wanted


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


# -- the filing loop -------------------------------------------------------------------------


def state_paths(config: Config) -> tuple[Path, Path]:
    """The state database and the lock directory."""
    return config.state_dir / "triage.db", config.state_dir / "locks"


@dataclass
class RunReport:
    """What one pass did (or, in a dry run, would do)."""

    run_id: int | None
    dry_run: bool
    read: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    moved: int = 0
    failed: int = 0
    reconciled: dict[str, int] = field(default_factory=dict)
    learnt: dict[str, int] = field(default_factory=dict)  # corrections, hand-filed examples
    retrain: RetrainReport | None = None
    plan: list[Planned] = field(default_factory=list)  # filled in dry runs only
    note: str = ""
    digest: DigestReport | None = None  # the weekly digest, when this pass wrote it

    def add(self, counts: dict[str, int]) -> None:
        for name, count in counts.items():
            self.counts[name] = self.counts.get(name, 0) + count


class Cycle:
    """One account's filing work on an open mailbox and store: reconcile, then sync the inbox.

    The inbox's sync mark (UIDVALIDITY, highest UID) only moves past a batch once every move
    of that batch is done and recorded, so a crash anywhere means the batch is read again.
    """

    def __init__(
        self,
        config: Config,
        account: AccountConfig,
        mailbox: Mailbox,
        store: Store,
        model: TriageModel | None,
        *,
        dry_run: bool = False,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        self.config = config
        self.account = account
        self.mailbox = mailbox
        self.store = store
        self.planner = Planner(account, model, sender_memory(store, account))
        self.dry_run = dry_run
        self.stop = stop or (lambda: False)
        self.inbox = account.folders.inbox
        self._folders: set[str] | None = None

    # -- reconcile ------------------------------------------------------------------------------

    def reconcile(self) -> dict[str, int]:
        """Settle filings a previous run left half-done (killed between intent and done)."""
        intents = self.store.filings(self.account.name, state=INTENT)
        outcome: dict[str, int] = {}
        groups: dict[tuple[str, str], list[Filing]] = {}
        for filing in intents:
            groups.setdefault((filing.source, filing.destination), []).append(filing)
        for (source, destination), filings in groups.items():
            for state, ids in self._reconcile_group(source, destination, filings).items():
                if ids:
                    self.store.set_state(ids, state)
                    outcome[state] = outcome.get(state, 0) + len(ids)
        if outcome:
            log.info("reconciled %d unfinished filings: %s", len(intents), outcome)
        return outcome

    def _reconcile_group(
        self, source: str, destination: str, filings: list[Filing]
    ) -> dict[str, list[int]]:
        in_dest = self.locate_filed(destination, filings)
        if destination not in self.folders():
            # The buyer renamed it since (a rename keeps the UIDVALIDITY): a copy that landed
            # before the crash is there, and the original, still in the source on a server
            # without MOVE, must not be filed a second time.
            renamed = self._renamed_to(filings)
            if renamed is not None:
                in_dest = self.locate_filed(renamed, filings)
        src_state = self.mailbox.select(source)
        in_source: dict[int, int] = {}
        candidates = [f for f in filings if f.source_uidvalidity == src_state.uidvalidity]
        if candidates:
            present = set(self.mailbox.uids_above(min(f.source_uid for f in candidates) - 1))
            fetched = {
                m.uid: header_hash(m.data)
                for m in self.mailbox.fetch(
                    [f.source_uid for f in candidates if f.source_uid in present], max_bytes=0
                )
            }
            in_source = {
                f.id: f.source_uid for f in candidates if fetched.get(f.source_uid) == f.header_hash
            }
        # The source's UIDVALIDITY changed since (its old UIDs mean nothing now): look for the
        # rest there by Message-ID, as locate_filed does, or a message that never left would
        # be recorded as vanished.
        for filing in filings:
            if filing.source_uidvalidity != src_state.uidvalidity and filing.message_id:
                uids = self.mailbox.search_message_id(filing.message_id)
                if uids:
                    in_source[filing.id] = uids[0]
        # In both places: the copy landed but the original was not removed (no-MOVE servers).
        both = [f.id for f in filings if f.id in in_dest and f.id in in_source]
        if both:
            self.mailbox.delete([in_source[i] for i in both])
        return {
            DONE: [f.id for f in filings if f.id in in_dest],
            INTERRUPTED: [f.id for f in filings if f.id in in_source and f.id not in in_dest],
            VANISHED: [f.id for f in filings if f.id not in in_dest and f.id not in in_source],
        }

    def _renamed_to(self, filings: list[Filing]) -> str | None:
        """The folder with the UIDVALIDITY the filings' destination had, if there is one."""
        wanted = {f.dest_uidvalidity for f in filings if f.dest_uidvalidity}
        for name in sorted(self.folders()) if wanted else ():
            state = self._unless_gone(name, self.mailbox.status)
            if state is not None and state.uidvalidity in wanted:
                return name
        return None

    def locate_filed(self, folder: str, filings: list[Filing]) -> dict[int, int]:
        """Filing id -> UID in `folder` for the filings whose message is there."""
        if folder not in self.folders():
            return {}
        state = self._unless_gone(folder, self.mailbox.select)
        if state is None:
            return {}
        found: dict[int, int] = {}
        comparable = [
            f for f in filings if f.dest_uidvalidity == state.uidvalidity and f.dest_uidnext
        ]
        if comparable:
            low = min(f.dest_uidnext or 1 for f in comparable)
            by_hash = {
                header_hash(m.data): m.uid
                for m in self.mailbox.fetch(self.mailbox.uids_above(low - 1), max_bytes=0)
            }
            found.update(
                {f.id: by_hash[f.header_hash] for f in comparable if f.header_hash in by_hash}
            )
        for filing in filings:
            if filing.id not in found and filing.message_id:
                uids = self.mailbox.search_message_id(filing.message_id)
                if uids:
                    found[filing.id] = uids[0]
        return found

    def folders(self) -> set[str]:
        if self._folders is None:
            self._folders = {f.name for f in self.mailbox.list_folders() if f.selectable}
        return self._folders

    def ensure_folder(self, name: str) -> None:
        if name not in self.folders():
            self.mailbox.create_folder(name)
            self.folders().add(name)

    def _unless_gone(
        self, folder: str, command: Callable[[str], FolderState]
    ) -> FolderState | None:
        """`command(folder)` (STATUS or SELECT), or None when the buyer deleted or renamed the
        folder since the folders were listed: an everyday event that must not stop `triage
        run`. Any other refusal is raised."""
        try:
            return command(folder)
        except MailboxError as exc:
            if exc.retryable:
                raise
            self._folders = None
            if folder in self.folders():
                raise
            log.info("%s was deleted or renamed meanwhile", folder)
            return None

    # -- learning from the buyer ------------------------------------------------------------------

    def learn_from_buyer(self) -> dict[str, int]:
        """Read what is new in the generic bucket and the partner folders: the buyer's
        corrections of triage's filings and mail filed by hand become examples, and
        corrections take effect at once through sender memory."""
        roles = folder_roles(self.mailbox.list_folders(), self.account.folders)
        # On the very first run the folders are as `train` read them; a folder that appears
        # later (the buyer made a new partner folder) is read from its first message.
        first_run = self.store.mark(self.account.name, self.inbox) is None
        found: dict[str, int] = {}
        for role in roles:
            if role.role not in (PARTNER, GENERIC):
                continue
            folder = role.folder.name
            state = self._unless_gone(folder, self.mailbox.status)  # one round trip
            if state is None:
                continue
            mark = self.store.mark(self.account.name, folder)
            if mark is None and first_run:
                self.store.set_mark(self.account.name, folder, state.uidvalidity, state.uidnext - 1)
                continue
            if mark is None or mark.uidvalidity != state.uidvalidity:
                since = 0
            elif state.uidnext - 1 <= mark.highest_uid:
                continue
            else:
                since = mark.highest_uid
            if self._unless_gone(folder, self.mailbox.select) is None:
                continue
            uids = self.mailbox.uids_above(since)
            if uids:
                for kind, count in self._arrivals(folder, uids).items():
                    found[kind] = found.get(kind, 0) + count
            self.store.set_mark(
                self.account.name, folder, state.uidvalidity, max(uids, default=since)
            )
        if found:
            self.planner.memory = sender_memory(self.store, self.account)
            log.info("learnt from the buyer: %s", found, extra={"event": "learn", "counts": found})
        return found

    def _arrivals(self, folder: str, uids: list[int]) -> dict[str, int]:
        heads = {m.uid: m.data for m in self.mailbox.fetch(uids, max_bytes=0)}
        hashes = {uid: header_hash(data) for uid, data in heads.items()}
        places = self.store.last_places(self.account.name, list(hashes.values()))
        taught: dict[int, tuple[str, str | None]] = {}
        for uid, digest in hashes.items():
            filed_to, decided, undone = places[digest]
            kind = classify_arrival(
                Arrival(folder, digest, "", filed_to, decided, undone), self.inbox
            )
            if kind in (CORRECTION, HAND_FILED):
                taught[uid] = (kind, filed_to or decided)
        if not taught:
            return {}
        examples = []
        moved: list[tuple[Message, str, str]] = []
        for fetched in self.mailbox.fetch(sorted(taught), max_bytes=TRAIN_MAX_BYTES):
            kind, previous = taught[fetched.uid]
            message = parse(fetched.data, key=f"{folder}/{fetched.uid}")
            moved.append((message, hashes[fetched.uid], folder))
            examples.append(
                Example(
                    hashes[fetched.uid],
                    message.sender,
                    folder,
                    kind,
                    previous,
                    message_bytes(message),
                )
            )
        self.store.add_examples(self.account.name, examples)
        records, found = digest_records(self.account, moved, seen=datetime.now(UTC))
        self.store.record_mail(self.account.name, records, found)
        counts: dict[str, int] = {}
        for example in examples:
            counts[example.kind] = counts.get(example.kind, 0) + 1
        return counts

    # -- sync -----------------------------------------------------------------------------------

    def new_uids(self, backfill: bool = False) -> tuple[FolderState, list[int], str]:
        """The inbox's UIDs to look at now, with a note when the mark was (re)set."""
        mark = self.store.mark(self.account.name, self.inbox)
        state = self.mailbox.selected_state
        if state is None or state.name != self.inbox or mark is None or backfill:
            state = self.mailbox.select(self.inbox)
        if backfill:
            return state, self.mailbox.uids_above(0), "backfill: every message in the inbox"
        if mark is None:
            # First run: what is already in the inbox is the buyer's; only new mail is filed.
            if not self.dry_run:
                # Remembered so that a later UIDVALIDITY change cannot make them look new.
                existing = self.mailbox.uids_above(0)
                self.store.remember_baseline(
                    self.account.name, self.mailbox.fetch_message_ids(existing).values()
                )
                self.store.set_mark(
                    self.account.name, self.inbox, state.uidvalidity, state.uidnext - 1
                )
            return (
                state,
                [],
                (
                    f"first run: {state.exists} messages already in {self.inbox} "
                    "are left alone (use --backfill to file them)"
                ),
            )
        if mark.uidvalidity != state.uidvalidity:
            return (
                state,
                self._resync(state),
                (
                    f"{self.inbox} UIDVALIDITY changed ({mark.uidvalidity} -> "
                    f"{state.uidvalidity}): resynced by Message-ID"
                ),
            )
        return state, self.mailbox.uids_above(mark.highest_uid), ""

    def _resync(self, state: FolderState) -> list[int]:
        """After a UIDVALIDITY change, only messages triage has never decided about are new."""
        ids = self.mailbox.fetch_message_ids(self.mailbox.uids_above(0))
        known = self.store.known_message_ids(self.account.name, [m for m in ids.values() if m])
        # Without a Message-ID a message cannot be told apart from one seen before: leave it.
        fresh = sorted(uid for uid, mid in ids.items() if mid and mid not in known)
        log.warning(
            "%s: UIDVALIDITY changed; %d of %d messages are new by Message-ID",
            self.inbox,
            len(fresh),
            len(ids),
        )
        if not self.dry_run:
            self.store.set_mark(
                self.account.name,
                self.inbox,
                state.uidvalidity,
                max(ids, default=state.uidnext - 1),
            )
        return fresh

    def sync(
        self,
        report: RunReport,
        *,
        backfill: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """File what is new in the inbox: fetch and classify batch by batch, move in rounds.

        Moves are sent once per round of `move_batch` messages (one UID MOVE per
        destination): on Dovecot's Maildir every MOVE rescans the source folder, so fewer,
        larger MOVEs are much faster on a big inbox. Only the decisions, not the messages, are
        kept until their round is applied.
        """
        state, uids, note = self.new_uids(backfill)
        if note:
            log.info("%s", note)
            report.note = note
        run = self.config.run
        round_size = max(run.batch_size, run.move_batch)
        pending: list[Planned] = []
        done = 0
        round_started = time.monotonic()
        for batch in chunked(uids, run.batch_size):
            if self.stop():
                log.info(
                    "stopping: %d of %d new messages left for the next run",
                    len(uids) - done,
                    len(uids),
                )
                break
            if not pending:
                round_started = time.monotonic()
            pending.extend(self._classify(list(batch), report))
            done += len(batch)
            if len(pending) >= round_size:
                self._apply(state, pending, batch[-1], report, round_started)
                pending = []
            if progress:
                progress(done, len(uids))
        if pending:
            self._apply(state, pending, pending[-1].uid, report, round_started)

    def _classify(self, uids: list[int], report: RunReport) -> list[Planned]:
        """Fetch, parse and decide; the decisions keep the message without its body text."""
        fetched = list(self.mailbox.fetch(uids, max_bytes=self.config.run.max_message_bytes))
        messages = [parse(m.data, key=f"{self.inbox}/{m.uid}") for m in fetched]
        hashes = [header_hash(m.data) for m in fetched]
        filed_before = self.store.filed_before(self.account.name, hashes)
        plan = self.planner.plan([m.uid for m in fetched], messages, hashes, filed_before)
        report.read += len(plan)
        report.add(summarise(plan, self.inbox))
        log_kept(plan, self.inbox)
        if not self.dry_run:
            self._moved_back(plan, hashes)
            self._keep_filed_as_examples(plan)
            records, found = digest_records(
                self.account,
                ((p.message, p.header_hash, p.destination) for p in plan),
                seen=datetime.now(UTC),
            )
            self.store.record_mail(self.account.name, records, found)
        slim = [
            dataclasses.replace(p, message=dataclasses.replace(p.message, text="")) for p in plan
        ]
        if self.dry_run:
            report.plan.extend(slim)
            return []
        return slim

    def _keep_filed_as_examples(self, plan: list[Planned]) -> None:
        """What triage files becomes a training example (the message itself, while it is at
        hand): mail the buyer leaves where triage put it is a confirmed example at the next
        retrain; a later correction of the same message overrides it."""
        filed = [p for p in plan if p.moves(self.inbox)]
        if filed:
            self.store.add_examples(
                self.account.name,
                [
                    Example(
                        p.header_hash,
                        p.message.sender,
                        p.destination,
                        FILED,
                        None,
                        message_bytes(p.message),
                    )
                    for p in filed
                ],
            )

    def _moved_back(self, plan: list[Planned], hashes: list[str]) -> None:
        """Mail triage filed that the buyer put back into the inbox: a correction to "keep"."""
        back = [p for p in plan if p.reason == MOVED_BACK]
        if not back:
            return
        places = self.store.last_places(self.account.name, [p.header_hash for p in back])
        examples = [
            Example(
                p.header_hash,
                p.message.sender,
                self.inbox,
                CORRECTION,
                places[p.header_hash][0],
                message_bytes(p.message),
            )
            for p in back
            if not places[p.header_hash][2]  # not what `triage undo` put back
        ]
        if examples:
            self.store.add_examples(self.account.name, examples)
            self.planner.memory = sender_memory(self.store, self.account)

    def _apply(
        self,
        state: FolderState,
        plan: list[Planned],
        last_uid: int,
        report: RunReport,
        started: float,
    ) -> None:
        """Record the round's decisions and intents, move, mark done, then move the sync mark.
        `started` is when the round's first batch was fetched (for the log line)."""
        counts = summarise(plan, self.inbox)
        moves: dict[str, list[Planned]] = {}
        for item in plan:
            if item.moves(self.inbox):
                moves.setdefault(item.destination, []).append(item)
        targets = {}
        for destination in moves:
            self.ensure_folder(destination)
            target = self._unless_gone(destination, self.mailbox.status)
            if target is None:  # gone since the folders were listed: make it anew
                self.ensure_folder(destination)
                target = self.mailbox.status(destination)
            targets[destination] = target
        intents = [
            {
                "message_id": item.message.message_id,
                "header_hash": item.header_hash,
                "sender": item.message.sender,
                "source": self.inbox,
                "source_uidvalidity": state.uidvalidity,
                "source_uid": item.uid,
                "destination": destination,
                "dest_uidvalidity": targets[destination].uidvalidity,
                "dest_uidnext": targets[destination].uidnext,
                "confidence": item.confidence,
                "reason": item.reason,
            }
            for destination, items in moves.items()
            for item in items
        ]
        decisions = [
            Decision(
                self.inbox,
                state.uidvalidity,
                p.uid,
                p.message.message_id,
                p.header_hash,
                p.message.sender,
                p.destination,
                p.confidence,
                p.reason,
            )
            for p in plan
        ]
        ids = self.store.add_intents(self.run_id, self.account.name, intents, decisions)
        filing_of = {
            (i["destination"], i["source_uid"]): fid for i, fid in zip(intents, ids, strict=True)
        }
        for destination, items in moves.items():
            filing_ids = [filing_of[(destination, item.uid)] for item in items]
            try:
                result = self.mailbox.move([item.uid for item in items], destination)
            except MailboxError as exc:
                if exc.retryable:
                    raise
                # The server refused (quota, folder gone, ...): the mail stays in the inbox.
                log.warning("could not file %d messages into %s: %s", len(items), destination, exc)
                self.store.set_state(filing_ids, FAILED)
                self.store.move_mail(
                    self.account.name,
                    [(item.header_hash, self.inbox, weekly.KEEP) for item in items],
                )
                report.failed += len(items)
                self._folders = None
                continue
            dest_uids = {filing_of[(destination, uid)]: new for uid, new in result.new_uids.items()}
            self.store.set_state(filing_ids, DONE, dest_uids)
            report.moved += len(items)
        self.store.set_mark(self.account.name, self.inbox, state.uidvalidity, last_uid)
        elapsed = time.monotonic() - started
        log.info(
            "batch of %d filed in %.1f s: %s",
            len(plan),
            elapsed,
            ", ".join(f"{name} {count}" for name, count in counts.items()) or "nothing new",
            extra={
                "event": "batch",
                "messages": len(plan),
                "counts": counts,
                "seconds": round(elapsed, 3),
            },
        )

    started_run: int | None = None

    def start_run(self, mode: str = "run") -> int:
        if self.started_run is None:
            self.started_run = self.store.start_run(self.account.name, mode)
        return self.started_run

    @property
    def run_id(self) -> int:
        """The run this pass records its work under (recorded when first needed)."""
        return self.start_run()


def log_kept(plan: Iterable[Planned], inbox: str) -> None:
    """Say why each message left in the inbox stays: at INFO for one that could not be read in
    full (broken or hostile mail is never left without a word), at DEBUG for the others."""
    for p in plan:
        if p.moves(inbox):
            continue
        defects = p.message.defects
        log.log(
            logging.INFO if defects else logging.DEBUG,
            "%s stays in %s: %s%s",
            p.message.key,
            inbox,
            p.reason,
            f" (read in part: {'; '.join(defects[:3])}{'; ...' if len(defects) > 3 else ''})"
            if defects
            else "",
            extra={"event": "kept", "uid": p.uid, "reason": p.reason, "defects": list(defects)},
        )


def _open_store(config: Config) -> Store:
    return Store.open(state_paths(config)[0])


def _load_model_if_any(config: Config, account: AccountConfig) -> TriageModel | None:
    try:
        path = current_model_path(config, account)
    except ModelError:
        return None
    return TriageModel.load(path)


def run_once(
    config: Config,
    account: AccountConfig,
    *,
    dry_run: bool = False,
    backfill: bool = False,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> RunReport:
    """One pass over an account: reconcile, then file what is new. `--once` and cron."""
    with AccountLock(state_paths(config)[1], account.name), _open_store(config) as store:
        model = _load_model_if_any(config, account)
        with open_mailbox(account, config.run) as mailbox:
            cycle = Cycle(config, account, mailbox, store, model, dry_run=dry_run, stop=stop)
            report = _pass(cycle, backfill, progress, record_idle=True)
            if not dry_run:
                report.digest = DigestSchedule(config, account).tick(mailbox, store)
    if not dry_run and retrain_due(config, account):
        report.retrain = retrain(config, account)
    return report


def _pass(
    cycle: Cycle,
    backfill: bool,
    progress: Callable[[int, int], None] | None,
    *,
    record_idle: bool,
    learn: bool = True,
) -> RunReport:
    """Reconcile, learn from the buyer (when `learn`), then sync. With `record_idle` a run is
    recorded even when nothing was new (cron runs show in `status`); the long-running loop
    records only passes that did work."""
    if record_idle and not cycle.dry_run:
        cycle.start_run("backfill" if backfill else "run")
    report = RunReport(None, cycle.dry_run)
    status = "failed"
    try:
        if not cycle.dry_run:
            report.reconciled = cycle.reconcile()
            if learn:
                report.learnt = cycle.learn_from_buyer()
        cycle.sync(report, backfill=backfill, progress=progress)
        status = "stopped" if cycle.stop() else "ok"
    finally:
        if cycle.started_run is not None:
            cycle.store.finish_run(cycle.started_run, status)
    report.run_id = cycle.started_run
    return report


def run_forever(
    config: Config,
    account: AccountConfig,
    *,
    dry_run: bool = False,
    stop: Callable[[], bool],
    on_report: Callable[[RunReport], None] | None = None,
    max_backoff: float = 300.0,
) -> None:
    """File new mail as it arrives until `stop()`; reconnects with capped exponential backoff."""
    backoff = 1.0
    last_learnt = -LEARN_EVERY
    retrainer = BackgroundRetrain(config, account)
    schedule = DigestSchedule(config, account)
    with AccountLock(state_paths(config)[1], account.name), _open_store(config) as store:
        model = _load_model_if_any(config, account)
        model_path = _current_or_none(config, account)
        while not stop():
            try:
                with open_mailbox(account, config.run) as mailbox:
                    wait = config.run.idle_refresh if mailbox.has_idle else config.run.poll_interval
                    while not stop():
                        latest = _current_or_none(config, account)
                        if latest != model_path:  # retrained meanwhile: use the new model
                            model, model_path = _load_model_if_any(config, account), latest
                        cycle = Cycle(
                            config, account, mailbox, store, model, dry_run=dry_run, stop=stop
                        )
                        # Looking for the buyer's moves costs a STATUS per watched folder:
                        # not on every wakeup, so an idle poll stays one UID SEARCH.
                        learn = time.monotonic() - last_learnt >= LEARN_EVERY
                        report = _pass(cycle, False, None, record_idle=False, learn=learn)
                        if learn:
                            last_learnt = time.monotonic()
                        if report.learnt and not dry_run:
                            retrainer.maybe_start()
                        if not dry_run:
                            report.digest = schedule.tick(mailbox, store)
                        backoff = 1.0
                        if on_report:
                            on_report(report)
                        if report.read and not dry_run:
                            continue  # mail may have come in during the pass: look again now
                        selected = mailbox.selected_state
                        if selected is None or selected.name != account.folders.inbox:
                            mailbox.select(account.folders.inbox)
                        mailbox.wait(min(wait, MAX_QUIET), stop)
            except MailboxError as exc:
                if not exc.retryable:
                    raise
                log.warning(
                    "%s; reconnecting in %.0f s",
                    exc,
                    backoff,
                    extra={"event": "reconnect", "delay": backoff},
                )
                deadline = time.monotonic() + backoff
                while time.monotonic() < deadline and not stop():
                    time.sleep(min(0.5, deadline - time.monotonic()))
                backoff = min(backoff * 2, max_backoff)


def _current_or_none(config: Config, account: AccountConfig) -> Path | None:
    try:
        return current_model_path(config, account)
    except ModelError:
        return None


# -- retraining -----------------------------------------------------------------------------


def sender_memory(store: Store, account: AccountConfig) -> SenderMemory:
    """Sender memory as the store's history says: where the buyer keeps each sender's mail,
    and the buyer's corrections, in time order."""
    memory = SenderMemory()
    for sender, folder in store.placements(account.name):
        memory.observe(sender, folder)
    for sender, folder in store.corrections(account.name):
        memory.learn(sender, folder)
    return memory


@dataclass(frozen=True, slots=True)
class RetrainReport:
    promoted: bool
    path: Path
    messages: int
    corrections: int
    old_score: float | None
    new_score: float | None


def _holdout_accuracy(scores: dict[str, Any]) -> float | None:
    holdout = scores.get("holdout") or {}
    value = holdout.get("accuracy")
    return float(value) if value is not None else None


def retrain(
    config: Config, account: AccountConfig, *, policy: RetrainPolicy | None = None
) -> RetrainReport:
    """Train again on everything the store holds (the folders as last trained, plus the
    buyer's corrections and hand-filed mail), without reading the mailbox. The new model is
    promoted unless its holdout accuracy is worse than the current one's by more than the
    policy's margin; then it is kept aside (saved, not current) and the reason is logged."""
    policy = policy or RetrainPolicy(
        after_corrections=config.run.retrain_after, margin=config.run.retrain_margin
    )
    inbox = account.folders.inbox
    with _open_store(config) as store:
        examples = store.examples(account.name, confirmed_only=True)
        corrections = len(store.corrections(account.name))
    if not any(e.kind == TRAINED for e in examples):
        raise ModelError(f"account {account.name!r} has nothing to retrain on; run `triage train`")
    messages = [message_from_bytes(e.message) for e in examples]
    labels = [KEEP_LABEL if e.label == inbox else e.label for e in examples]
    current = _current_or_none(config, account)
    old_score = None
    if current is not None:
        old_score = _holdout_accuracy(TriageModel.load(current).scores)
    model = TriageModel.train(
        messages, labels, identity=identity_of(account), generic=account.folders.generic
    )
    new_score = _holdout_accuracy(dict(model.scores))
    if policy.promote(old_score, new_score):
        report = _save_as_current(config, account, model, len(messages))
        _settle_memory(config, account, model, examples, messages, labels)
        return RetrainReport(True, report.path, len(messages), corrections, old_score, new_score)
    aside = model_dir(config, account) / "aside"
    path = model.save(aside, datetime.now(UTC).strftime("model-%Y%m%dT%H%M%S_%f"))
    log.warning(
        "retrained model not promoted: holdout accuracy %.3f against %.3f now (margin %.3f); "
        "kept aside as %s",
        new_score if new_score is not None else float("nan"),
        old_score if old_score is not None else float("nan"),
        policy.margin,
        path,
    )
    return RetrainReport(False, path, len(messages), corrections, old_score, new_score)


def _settle_memory(
    config: Config,
    account: AccountConfig,
    model: TriageModel,
    examples: list[Example],
    messages: list[Message],
    labels: list[str],
) -> None:
    """Corrections the new model gets right by itself leave sender memory: kept on, they would
    overrule a model that has learnt to read the content (see learn.settle_memory)."""
    corrected = [
        (m, label)
        for e, m, label in zip(examples, messages, labels, strict=True)
        if e.kind == CORRECTION
    ]
    if not corrected:
        return
    with _open_store(config) as store:
        memory = sender_memory(store, account)
        before = set(memory.corrected())
        settle_memory(memory, corrected, model.predict_labels)
        settled = sorted(before - set(memory.corrected()))
        store.settle(account.name, settled)
    if settled:
        log.info("sender memory: %d corrections are now learnt by the model", len(settled))


def retrain_due(config: Config, account: AccountConfig) -> bool:
    """Whether `retrain_after` corrections came in since the current model was trained."""
    current = _current_or_none(config, account)
    if current is None:
        return False
    try:
        trained_at = json.loads(current.with_suffix(".json").read_text()).get("trained_at", "")
    except (OSError, ValueError):
        return False
    with _open_store(config) as store:
        since = store.corrections_since(account.name, str(trained_at))
    return RetrainPolicy(after_corrections=config.run.retrain_after).due(since)


class BackgroundRetrain:
    """Retrains in a thread while `run` keeps filing; the loop picks the new model up when
    the current-model pointer changes."""

    def __init__(self, config: Config, account: AccountConfig) -> None:
        self.config = config
        self.account = account
        self.thread: threading.Thread | None = None

    def maybe_start(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            return
        if not retrain_due(self.config, self.account):
            return
        self.thread = threading.Thread(target=self._run, name="retrain", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            report = retrain(self.config, self.account)
            log.info(
                "retrained on %d examples (%d corrections): %s",
                report.messages,
                report.corrections,
                "promoted" if report.promoted else "kept aside",
            )
        except Exception:
            log.exception("retraining failed; filing goes on with the current model")


# -- undo and status -------------------------------------------------------------------------


@dataclass
class UndoReport:
    run_id: int | None
    moved_back: int = 0
    not_found: int = 0  # no longer where triage put it (the buyer moved or deleted it)


def undo(config: Config, account: AccountConfig, run_id: int | None = None) -> UndoReport:
    """Move back what a run filed (default: the last run that filed anything), where it still
    is where triage put it. Undone messages are never filed again."""
    with AccountLock(state_paths(config)[1], account.name), _open_store(config) as store:
        run_id = run_id or store.last_run_with_filings(account.name)
        report = UndoReport(run_id)
        if run_id is None:
            return report
        filings = store.filings(account.name, run_id=run_id, state=DONE)
        with open_mailbox(account, config.run) as mailbox:
            cycle = Cycle(config, account, mailbox, store, None)
            groups: dict[tuple[str, str], list[Filing]] = {}
            for filing in filings:
                groups.setdefault((filing.destination, filing.source), []).append(filing)
            for (destination, source), items in groups.items():
                found = cycle.locate_filed(destination, items)
                if found:
                    cycle.ensure_folder(source)
                    mailbox.select(destination)
                    mailbox.move(sorted(found.values()), source)
                    store.set_state(sorted(found), UNDONE)
                report.moved_back += len(found)
                report.not_found += len(items) - len(found)
        log.info(
            "undo of run %s: %d moved back, %d no longer where triage put them",
            run_id,
            report.moved_back,
            report.not_found,
        )
        return report


@dataclass
class AccountStatus:
    account: str
    last_run: Run | None
    week: dict[str, int]
    model_path: Path | None
    model_trained_at: str | None
    unfinished: int


def status(config: Config) -> list[AccountStatus]:
    """Per account: the last run, counts per destination over the last 7 days, model age."""
    since = iso(datetime.now(UTC) - timedelta(days=7))
    out = []
    with _open_store(config) as store:
        for account in config.accounts:
            runs = store.runs(account.name, limit=1)
            path = _current_or_none(config, account)
            trained_at = None
            if path is not None:
                try:
                    trained_at = json.loads(path.with_suffix(".json").read_text()).get("trained_at")
                except (OSError, ValueError):
                    trained_at = None
            out.append(
                AccountStatus(
                    account.name,
                    runs[0] if runs else None,
                    store.counts_by_destination(account.name, since),
                    path,
                    trained_at,
                    len(store.filings(account.name, state=INTENT)),
                )
            )
    return out


# -- the weekly digest ----------------------------------------------------------------------------

#: What the store records for a week whose quiet digest was skipped (digest_skip_empty).
DIGEST_SKIPPED = "skipped"
#: On the first look at the buyer's sent folder, only this many of its newest messages are read.
SENT_FIRST_READ = 2000


@dataclass
class DigestReport:
    digest: weekly.Digest
    html: str
    text: str
    message_id: str
    folder: str
    delivered: bool  # appended by this call
    note: str  # why it was not delivered ("already delivered", ...), else ""
    out: Path | None = None


def sent_folder(folders: Iterable[Folder]) -> str | None:
    """The buyer's sent folder: the one with the "sent" role (the \\Sent special use, or, on a
    store without special-use metadata, a usual name: see mailbox.base.ROLE_BY_NAME)."""
    return next((f.name for f in folders if f.selectable and f.role == "sent"), None)


def sync_sent(
    mailbox: Mailbox, store: Store, account: AccountConfig, folders: Iterable[Folder]
) -> int:
    """Read the headers of what the buyer sent since last time (whom they wrote to, which
    messages they answered); returns how many messages were new. `folders`: as listed."""
    folder = sent_folder(folders)
    if folder is None:
        log.info("no sent folder found: the digest cannot tell which threads you answered")
        return 0
    state = mailbox.select(folder)
    mark = store.mark(account.name, folder)
    if mark is None or mark.uidvalidity != state.uidvalidity:
        uids = mailbox.uids_above(0)[-SENT_FIRST_READ:]
    else:
        uids = mailbox.uids_above(mark.highest_uid)
    seen = datetime.now(UTC)
    records = [
        weekly.mail_record(
            parse(m.data, key=f"{folder}/{m.uid}"),
            header_hash(m.data),
            folder,
            weekly.SENT,
            seen=seen,
        )
        for m in mailbox.fetch(uids, max_bytes=0)  # headers only
    ]
    fresh = store.record_mail(account.name, records, [], replace=False)
    highest = max(uids, default=0 if mark is None else mark.highest_uid)
    store.set_mark(account.name, folder, state.uidvalidity, max(highest, state.uidnext - 1))
    return fresh


def _settings(run: RunConfig) -> weekly.Settings:
    return weekly.Settings(
        invoice_change=run.digest_invoice_change / 100,
        renewal_days=run.digest_renewal_days,
        follow_up_days=run.digest_followup_days,
    )


def build_digest(
    config: Config,
    account: AccountConfig,
    store: Store,
    *,
    end: datetime,
    days: int = 7,
    partner_folders: Iterable[str] = (),
) -> weekly.Digest:
    """The digest of the `days` days before `end`, from what the store kept."""
    start = end - timedelta(days=days)
    lookback = min(start, end - weekly.PROMOTE_LOOKBACK, end - weekly.FOLLOW_UP_HORIZON)
    corrections = [
        weekly.Correction(sender, previous or "", label, kind)
        for sender, label, previous, kind in store.examples_between(
            account.name, (CORRECTION, HAND_FILED), iso(start), iso(end)
        )
    ]
    return weekly.build(
        account.name,
        end=end,
        start=start,
        mail=store.mail(account.name, since=iso(lookback)),
        facts=store.facts(account.name),
        first_contact=store.first_contact(account.name),
        last_in_folders=store.last_in_folders(account.name, iso(end)),
        corrections=corrections,
        partner_folders=sorted(partner_folders),
        partner_prefix=account.folders.partner_prefix,
        settings=_settings(config.run),
    )


def deliver_digest(
    config: Config,
    account: AccountConfig,
    mailbox: Mailbox,
    store: Store,
    *,
    end: datetime,
    days: int = 7,
    deliver: bool = True,
    out: Path | None = None,
) -> DigestReport:
    """Build the digest on an open mailbox and APPEND it to the digest folder, once per account
    and week: a digest whose Message-ID is already recorded, or already in the folder, is not
    delivered again. `out` also gets the HTML page."""
    folders = mailbox.list_folders()  # one LIST for the sent folder, partners and the target
    sync_sent(mailbox, store, account, folders)
    roles = folder_roles(folders, account.folders)
    partners = [r.folder.name for r in roles if r.role == PARTNER]
    digest = build_digest(config, account, store, end=end, days=days, partner_folders=partners)
    html, text = weekly.render_html(digest), weekly.render_text(digest)
    domain = next(iter(account.own_domains), "")
    message_id = weekly.message_id(account.name, digest.week, domain)
    folder = config.run.digest_folder
    report = DigestReport(digest, html, text, message_id, folder, False, "", out)
    if out is not None:
        _write_private(out, html)
    if not deliver:
        report.note = "not delivered (--no-deliver)"
    elif digest.empty and config.run.digest_skip_empty:
        report.note = "a quiet week: not delivered (digest_skip_empty = true)"
        # Remembered, so that `triage run` does not build it again on every pass this week.
        if not store.digest_delivered(account.name, digest.week):
            store.record_digest(account.name, digest.week, DIGEST_SKIPPED)
    elif store.digest_delivered(account.name, digest.week) not in (None, DIGEST_SKIPPED):
        report.note = f"the digest for {digest.week} was already delivered"
    else:
        if folder not in {f.name for f in folders}:
            mailbox.create_folder(folder)
        mailbox.select(folder)
        if mailbox.search_message_id(message_id):
            report.note = f"the digest for {digest.week} is already in {folder}"
        else:
            address = (account.own_addresses or (account.user or "triage@localhost",))[0]
            data = weekly.mime_message(
                digest,
                sender=address,
                recipient=address,
                message_id=message_id,
                html=html,
                text=text,
            )
            mailbox.append(folder, data, date=end)
            report.delivered = True
        store.record_digest(account.name, digest.week, message_id)
    log.info(
        "digest %s: %s",
        digest.week,
        "delivered to " + folder if report.delivered else report.note,
        extra={"event": "digest", "week": digest.week, "delivered": report.delivered},
    )
    return report


def _write_private(path: Path, text: str) -> None:
    """Write a file only the user can read (the digest names vendors and subjects)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file was already there, readable by others
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def digest(
    config: Config,
    account: AccountConfig,
    *,
    end: datetime | None = None,
    days: int = 7,
    deliver: bool = True,
    out: Path | None = None,
) -> DigestReport:
    """`triage digest`: the digest of the `days` days before `end` (default now)."""
    end = end or datetime.now().astimezone()
    with _open_store(config) as store, open_mailbox(account, config.run) as mailbox:
        return deliver_digest(
            config, account, mailbox, store, end=end, days=days, deliver=deliver, out=out
        )


def scheduled_digest(config: Config, now: datetime) -> datetime:
    """The latest scheduled digest time at or before `now` (the configured weekday and hour,
    in the time zone of `now`)."""
    run = config.run
    back = (now.weekday() - run.digest_weekday_number) % 7
    when = (now - timedelta(days=back)).replace(
        hour=run.digest_hour, minute=0, second=0, microsecond=0
    )
    return when - timedelta(days=7) if when > now else when


def maybe_deliver_digest(
    config: Config, account: AccountConfig, mailbox: Mailbox, store: Store, now: datetime
) -> DigestReport | None:
    """From `triage run`: the week's digest once its time has come (a machine that was off
    at that hour sends it at the next run of the same week)."""
    when = scheduled_digest(config, now)
    if store.digest_delivered(account.name, weekly.week_key(when)):
        return None
    first = store.first_decision_at(account.name)
    if first is None or first >= iso(when):
        return None  # triage was not filing yet: the first digest is the next one
    return deliver_digest(config, account, mailbox, store, end=when)


class DigestSchedule:
    """`triage run`'s weekly digest: delivered when due; a failure is logged and tried again an
    hour later, and never stops the filing."""

    RETRY = 3600.0

    def __init__(self, config: Config, account: AccountConfig) -> None:
        self.config = config
        self.account = account
        self.retry_at = 0.0

    def tick(self, mailbox: Mailbox, store: Store) -> DigestReport | None:
        if time.monotonic() < self.retry_at:
            return None
        try:
            return maybe_deliver_digest(
                self.config, self.account, mailbox, store, datetime.now().astimezone()
            )
        except MailboxError as exc:
            if exc.retryable:
                raise  # the connection is gone: run reconnects, and the digest comes after
            self.retry_at = time.monotonic() + self.RETRY
            log.error("could not deliver the weekly digest (%s); trying again in an hour", exc)
        except Exception:  # a digest bug must never stop the filing: logged with its trace
            self.retry_at = time.monotonic() + self.RETRY
            log.exception("could not write the weekly digest; trying again in an hour")
        return None

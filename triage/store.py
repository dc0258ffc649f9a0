"""The state database: one SQLite file (WAL) in the state dir, the only importer of sqlite3.

It keeps, per account: each folder's UIDVALIDITY and highest UID seen (the sync mark), every
run, every message triage decided about, and every filing with its state (intent -> done), so
that a run killed at any moment can be reconciled with the server on the next start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from triage.errors import StoreError

log = logging.getLogger(__name__)

# Filing states: written as INTENT before the MOVE, DONE after it (or after reconciliation).
# FAILED: the server refused the move; INTERRUPTED: a crash came before the move, the message
# was still in the source and is decided again; VANISHED: in neither place (the buyer moved or
# deleted it meanwhile); UNDONE: `triage undo` put it back.
INTENT, DONE, FAILED, VANISHED, UNDONE = "intent", "done", "failed", "vanished", "undone"
INTERRUPTED = "interrupted"

# Each entry upgrades the schema by one version; never edit one that has shipped.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE folders (
        account TEXT NOT NULL,
        folder TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        highest_uid INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (account, folder)
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL,
        mode TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL DEFAULT 'running',
        pid INTEGER NOT NULL
    );
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        account TEXT NOT NULL,
        folder TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        message_id TEXT NOT NULL,
        header_hash TEXT NOT NULL,
        sender TEXT NOT NULL,
        destination TEXT NOT NULL,
        confidence REAL,
        reason TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX decisions_message ON decisions(account, message_id);
    CREATE INDEX decisions_hash ON decisions(account, header_hash);
    CREATE TABLE filings (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        account TEXT NOT NULL,
        message_id TEXT NOT NULL,
        header_hash TEXT NOT NULL,
        sender TEXT NOT NULL,
        source TEXT NOT NULL,
        source_uidvalidity INTEGER NOT NULL,
        source_uid INTEGER NOT NULL,
        destination TEXT NOT NULL,
        dest_uidvalidity INTEGER,
        dest_uidnext INTEGER,
        dest_uid INTEGER,
        confidence REAL,
        reason TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL,
        done_at TEXT
    );
    CREATE INDEX filings_state ON filings(account, state);
    CREATE INDEX filings_run ON filings(run_id);
    CREATE INDEX filings_message ON filings(account, message_id);
    CREATE TABLE baseline (
        account TEXT NOT NULL,
        message_id TEXT NOT NULL,
        PRIMARY KEY (account, message_id)
    ) WITHOUT ROWID;
    """,
    # 2: what the buyer taught triage (corrections, hand-filed mail) and what it trained on,
    # with the parsed message, so a retrain never has to read the whole mailbox again.
    """
    CREATE TABLE examples (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL,
        header_hash TEXT NOT NULL,
        sender TEXT NOT NULL,
        label TEXT NOT NULL,
        kind TEXT NOT NULL,
        previous TEXT,
        message BLOB NOT NULL,
        at TEXT NOT NULL,
        settled INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX examples_account ON examples(account, kind, id);
    CREATE INDEX examples_hash ON examples(account, header_hash);
    CREATE INDEX filings_hash ON filings(account, header_hash);
    """,
    # 3: what the digest reads: one row per vendor message triage filed or trained on (and per
    # message the buyer sent), the facts found in it, and the digests delivered.
    """
    CREATE TABLE mail (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL,
        header_hash TEXT NOT NULL,
        message_id TEXT NOT NULL,
        sender TEXT NOT NULL,
        sender_name TEXT NOT NULL,
        vendor TEXT NOT NULL,
        subject TEXT NOT NULL,
        sent_at TEXT NOT NULL,
        folder TEXT NOT NULL,
        role TEXT NOT NULL,
        thread TEXT NOT NULL,
        refs TEXT NOT NULL,
        recipients TEXT NOT NULL,
        bulk INTEGER NOT NULL,
        at TEXT NOT NULL,
        UNIQUE (account, header_hash)
    );
    CREATE INDEX mail_sent ON mail(account, sent_at);
    CREATE TABLE facts (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL,
        header_hash TEXT NOT NULL,
        vendor TEXT NOT NULL,
        kind TEXT NOT NULL,
        said_at TEXT,
        amount TEXT,
        currency TEXT NOT NULL,
        due TEXT,
        detail TEXT NOT NULL,
        reference TEXT NOT NULL,
        status TEXT NOT NULL
    );
    CREATE INDEX facts_account ON facts(account, kind);
    CREATE INDEX facts_hash ON facts(account, header_hash);
    CREATE TABLE digests (
        account TEXT NOT NULL,
        week TEXT NOT NULL,
        message_id TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (account, week)
    );
    """,
)

# Kinds of examples.
TRAINED, CORRECTION, HAND_FILED, FILED = "trained", "correction", "hand-filed", "filed"


@dataclass(frozen=True, slots=True)
class Example:
    header_hash: str
    sender: str
    label: str
    kind: str
    previous: str | None
    message: bytes
    at: str = ""


@dataclass(frozen=True, slots=True)
class MailRecord:
    """What the digest keeps of one message: never its body.

    `role` is where it is: "partner", "generic" or "keep" (left in the inbox), or "sent" for
    the buyer's own mail (then `refs` holds the Message-IDs it answers and `recipients` its To
    and Cc). `sent_at` is the message's date (ISO, UTC), or when triage saw it if it has none.
    """

    header_hash: str
    message_id: str
    sender: str
    sender_name: str
    vendor: str
    subject: str
    sent_at: str
    folder: str
    role: str
    thread: str
    refs: str = ""
    recipients: str = ""
    bulk: bool = False


@dataclass(frozen=True, slots=True)
class FactRecord:
    """A digest fact as stored: amounts and dates as text (Decimal and ISO)."""

    header_hash: str
    vendor: str
    kind: str
    said_at: str | None
    amount: str | None
    currency: str
    due: str | None
    detail: str
    reference: str
    status: str


def _mail_record(row: Sequence[Any]) -> MailRecord:
    names = [f.name for f in dataclasses.fields(MailRecord)]
    values = dict(zip(names, row, strict=True))
    values["bulk"] = bool(values["bulk"])
    return MailRecord(**values)


def iso(when: datetime) -> str:
    """A time as the store writes it: ISO 8601 in UTC to the second, so that the order of the
    text is the order of the times (the queries compare them as text)."""
    return when.astimezone(UTC).isoformat(timespec="seconds")


def now() -> str:
    return iso(datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class FolderMark:
    uidvalidity: int
    highest_uid: int


@dataclass(frozen=True, slots=True)
class Decision:
    """What triage decided for one message it read from a watched folder."""

    folder: str
    uidvalidity: int
    uid: int
    message_id: str
    header_hash: str
    sender: str
    destination: str  # a folder, or the inbox's name when the message stays
    confidence: float | None
    reason: str  # "model", "rule", "own-domain", "never-move", "below-threshold", ...


@dataclass(frozen=True, slots=True)
class Filing:
    id: int
    run_id: int
    message_id: str
    header_hash: str
    sender: str
    source: str
    source_uidvalidity: int
    source_uid: int
    destination: str
    dest_uidvalidity: int | None
    dest_uidnext: int | None
    dest_uid: int | None
    confidence: float | None
    reason: str
    state: str
    created_at: str


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    account: str
    mode: str
    started_at: str
    finished_at: str | None
    status: str


class Store:
    """The state database. Open with `Store.open(path)`; use as a context manager."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.db = connection
        self.path = path

    @classmethod
    def open(cls, path: Path) -> Store:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            # Created 0600 before SQLite writes anything into it: it holds senders and subjects.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        try:
            db = sqlite3.connect(path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            store = cls(db, path)
            store._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{path}: the state database is unusable ({exc}); move it aside and run "
                "triage again (it will start fresh and leave existing mail alone)"
            ) from None
        return store

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self.path}: the state database is from a newer triage (schema {version}, "
                f"this one knows {len(MIGRATIONS)}); upgrade triage"
            )
        for number in range(version, len(MIGRATIONS)):
            with self.transaction():
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {number + 1}")
            log.debug("state database migrated to schema %d", number + 1)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- folder marks -----------------------------------------------------------------------------

    def mark(self, account: str, folder: str) -> FolderMark | None:
        row = self.db.execute(
            "SELECT uidvalidity, highest_uid FROM folders WHERE account=? AND folder=?",
            (account, folder),
        ).fetchone()
        return FolderMark(row[0], row[1]) if row else None

    def set_mark(self, account: str, folder: str, uidvalidity: int, highest_uid: int) -> None:
        self.db.execute(
            "INSERT INTO folders VALUES (?, ?, ?, ?, ?) ON CONFLICT (account, folder) DO UPDATE "
            "SET uidvalidity=excluded.uidvalidity, highest_uid=excluded.highest_uid, "
            "updated_at=excluded.updated_at",
            (account, folder, uidvalidity, highest_uid, now()),
        )

    # -- runs -----------------------------------------------------------------------------------

    def start_run(self, account: str, mode: str) -> int:
        cursor = self.db.execute(
            "INSERT INTO runs (account, mode, started_at, pid) VALUES (?, ?, ?, ?)",
            (account, mode, now(), os.getpid()),
        )
        return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, status: str = "ok") -> None:
        self.db.execute(
            "UPDATE runs SET finished_at=?, status=? WHERE id=?", (now(), status, run_id)
        )

    def runs(self, account: str, limit: int = 20) -> list[Run]:
        rows = self.db.execute(
            "SELECT id, account, mode, started_at, finished_at, status FROM runs "
            "WHERE account=? ORDER BY id DESC LIMIT ?",
            (account, limit),
        ).fetchall()
        return [Run(*row) for row in rows]

    def first_decision_at(self, account: str) -> str | None:
        """When triage first decided about a message of this account (ISO), if ever."""
        row = self.db.execute(
            "SELECT MIN(at) FROM decisions WHERE account=?", (account,)
        ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def last_run_with_filings(self, account: str) -> int | None:
        row = self.db.execute(
            "SELECT MAX(run_id) FROM filings WHERE account=? AND state=?", (account, DONE)
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    # -- decisions ------------------------------------------------------------------------------

    def remember_baseline(self, account: str, message_ids: Iterable[str]) -> None:
        """Message-IDs that were in the inbox before triage's first run (left alone)."""
        with self.transaction():
            self.db.executemany(
                "INSERT OR IGNORE INTO baseline VALUES (?, ?)",
                [(account, mid) for mid in message_ids if mid],
            )

    def known_message_ids(self, account: str, message_ids: Sequence[str]) -> set[str]:
        """Which of these Message-IDs triage has seen before: decided about, or left alone
        because they were there before its first run."""
        found: set[str] = set()
        for start in range(0, len(message_ids), 400):
            chunk = message_ids[start : start + 400]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT message_id FROM decisions WHERE account=? AND message_id IN ({marks}) "
                "UNION "
                f"SELECT message_id FROM baseline WHERE account=? AND message_id IN ({marks})",
                (account, *chunk, account, *chunk),
            ).fetchall()
            found.update(row[0] for row in rows)
        return found

    def filed_before(self, account: str, header_hashes: Sequence[str]) -> set[str]:
        """Header hashes of messages triage has filed (moved) before, in any run."""
        return self._matching(
            "SELECT header_hash FROM filings WHERE account=? AND state IN (?, ?, ?) AND "
            "header_hash IN ({marks})",
            (account, DONE, INTENT, UNDONE),
            header_hashes,
        )

    def _matching(self, sql: str, params: tuple[Any, ...], values: Sequence[str]) -> set[str]:
        """The first column of `sql` for `values`, 400 at a time (SQLite's limit on variables):
        `sql` ends with "IN ({marks})" and takes `params`, then the values."""
        found: set[str] = set()
        for start in range(0, len(values), 400):
            chunk = values[start : start + 400]
            query = sql.format(marks=",".join("?" * len(chunk)))
            found.update(row[0] for row in self.db.execute(query, (*params, *chunk)))
        return found

    # -- filings --------------------------------------------------------------------------------

    def add_intents(
        self,
        run_id: int,
        account: str,
        intents: Sequence[dict[str, Any]],
        decisions: Sequence[Decision] = (),
    ) -> list[int]:
        """Record a batch's decisions and the moves about to be made, in one transaction;
        returns the filing ids in the order of `intents`."""
        ids = []
        at = now()
        with self.transaction():
            self.db.executemany(
                "INSERT INTO decisions (run_id, account, folder, uidvalidity, uid, message_id, "
                "header_hash, sender, destination, confidence, reason, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id,
                        account,
                        d.folder,
                        d.uidvalidity,
                        d.uid,
                        d.message_id,
                        d.header_hash,
                        d.sender,
                        d.destination,
                        d.confidence,
                        d.reason,
                        at,
                    )
                    for d in decisions
                ],
            )
            for intent in intents:
                cursor = self.db.execute(
                    "INSERT INTO filings (run_id, account, message_id, header_hash, sender, "
                    "source, source_uidvalidity, source_uid, destination, dest_uidvalidity, "
                    "dest_uidnext, confidence, reason, state, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        account,
                        intent["message_id"],
                        intent["header_hash"],
                        intent["sender"],
                        intent["source"],
                        intent["source_uidvalidity"],
                        intent["source_uid"],
                        intent["destination"],
                        intent.get("dest_uidvalidity"),
                        intent.get("dest_uidnext"),
                        intent.get("confidence"),
                        intent["reason"],
                        INTENT,
                        at,
                    ),
                )
                ids.append(int(cursor.lastrowid or 0))
        return ids

    def set_state(
        self, filing_ids: Sequence[int], state: str, dest_uids: dict[int, int] | None = None
    ) -> None:
        """Move filings to `state`; `dest_uids` maps filing id -> UID in the destination."""
        dest_uids = dest_uids or {}
        done_at = now()
        with self.transaction():
            self.db.executemany(
                "UPDATE filings SET state=?, done_at=?, dest_uid=COALESCE(?, dest_uid) WHERE id=?",
                [(state, done_at, dest_uids.get(i), i) for i in filing_ids],
            )

    def filings(
        self,
        account: str,
        *,
        state: str | None = None,
        run_id: int | None = None,
        since: str | None = None,
    ) -> list[Filing]:
        sql = (
            "SELECT id, run_id, message_id, header_hash, sender, source, source_uidvalidity, "
            "source_uid, destination, dest_uidvalidity, dest_uidnext, dest_uid, confidence, "
            "reason, state, created_at FROM filings WHERE account=?"
        )
        args: list[Any] = [account]
        if state is not None:
            sql += " AND state=?"
            args.append(state)
        if run_id is not None:
            sql += " AND run_id=?"
            args.append(run_id)
        if since is not None:
            sql += " AND created_at>=?"
            args.append(since)
        rows = self.db.execute(sql + " ORDER BY id", args).fetchall()
        return [Filing(*row) for row in rows]

    # -- what the buyer taught ------------------------------------------------------------------

    def add_examples(self, account: str, examples: Sequence[Example]) -> None:
        at = now()
        with self.transaction():
            self.db.executemany(
                "INSERT INTO examples (account, header_hash, sender, label, kind, previous, "
                "message, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        account,
                        e.header_hash,
                        e.sender,
                        e.label,
                        e.kind,
                        e.previous,
                        e.message,
                        e.at or at,
                    )
                    for e in examples
                ],
            )

    def replace_trained(self, account: str, examples: Sequence[Example]) -> None:
        """The examples a full `triage train` read from the folders, instead of the last ones."""
        with self.transaction():
            self.db.execute("DELETE FROM examples WHERE account=? AND kind=?", (account, TRAINED))
        self.add_examples(account, examples)

    def examples(self, account: str, *, confirmed_only: bool = False) -> list[Example]:
        """Every example, each message once with its latest label, oldest first. With
        `confirmed_only`, mail triage filed counts only once its move is done."""
        rows = self.db.execute(
            "SELECT header_hash, sender, label, kind, previous, message, at FROM examples AS e "
            "WHERE account=? AND id = (SELECT MAX(id) FROM examples WHERE account=e.account "
            "AND header_hash=e.header_hash) ORDER BY id",
            (account,),
        ).fetchall()
        examples = [Example(*row) for row in rows]
        if not confirmed_only:
            return examples
        done = self._matching(
            "SELECT header_hash FROM filings WHERE account=? AND state=? AND "
            "header_hash IN ({marks})",
            (account, DONE),
            [e.header_hash for e in examples if e.kind == FILED],
        )
        return [e for e in examples if e.kind != FILED or e.header_hash in done]

    def corrections(self, account: str) -> list[tuple[str, str]]:
        """(sender, folder) of every correction a retrain has not learnt yet, oldest first."""
        rows = self.db.execute(
            "SELECT sender, label FROM examples WHERE account=? AND kind=? AND settled=0 "
            "ORDER BY id",
            (account, CORRECTION),
        ).fetchall()
        return [(row[0], row[1]) for row in rows]

    def settle(self, account: str, senders: Sequence[str]) -> None:
        """The retrained model gets these senders' corrections right: memory can let go."""
        with self.transaction():
            self.db.executemany(
                "UPDATE examples SET settled=1 WHERE account=? AND kind=? AND sender=?",
                [(account, CORRECTION, sender) for sender in senders],
            )

    def corrections_since(self, account: str, since: str) -> int:
        row = self.db.execute(
            # >=: times are to the second, and a correction in the second of training counts.
            "SELECT COUNT(*) FROM examples WHERE account=? AND kind=? AND at>=?",
            (account, CORRECTION, since),
        ).fetchone()
        return int(row[0])

    def placements(self, account: str, limit: int = 20000) -> list[tuple[str, str]]:
        """(sender, folder) of recent mail the buyer kept where triage filed it (filings the
        buyer corrected are left out: the correction says where that mail went), oldest first."""
        rows = self.db.execute(
            "SELECT sender, destination FROM (SELECT id, sender, destination FROM filings "
            "WHERE account=? AND state=? AND header_hash NOT IN (SELECT header_hash FROM "
            "examples WHERE account=? AND kind=?) ORDER BY id DESC LIMIT ?) ORDER BY id",
            (account, DONE, account, CORRECTION, limit),
        ).fetchall()
        return [(row[0], row[1]) for row in rows]

    def last_places(
        self, account: str, header_hashes: Sequence[str]
    ) -> dict[str, tuple[str | None, str | None, bool]]:
        """header hash -> (where triage last filed it, where it last decided it, undone)."""
        out: dict[str, tuple[str | None, str | None, bool]] = {}
        for start in range(0, len(header_hashes), 400):
            chunk = header_hashes[start : start + 400]
            marks = ",".join("?" * len(chunk))
            filed = {
                row[0]: (row[1], row[2])
                for row in self.db.execute(
                    f"SELECT header_hash, destination, state FROM filings WHERE account=? AND "
                    f"header_hash IN ({marks}) AND state IN (?, ?, ?) ORDER BY id",
                    (account, *chunk, DONE, INTENT, UNDONE),
                )
            }
            decided = {
                row[0]: row[1]
                for row in self.db.execute(
                    f"SELECT header_hash, destination FROM decisions WHERE account=? AND "
                    f"header_hash IN ({marks}) ORDER BY id",
                    (account, *chunk),
                )
            }
            for digest in chunk:
                where, state = filed.get(digest, (None, None))
                out[digest] = (where, decided.get(digest), state == UNDONE)
        return out

    # -- what the digest reads ---------------------------------------------------------------

    def record_mail(
        self,
        account: str,
        mail: Sequence[MailRecord],
        facts: Sequence[FactRecord],
        *,
        replace: bool = True,
    ) -> int:
        """Keep messages and their facts for the digest; returns how many were new.

        A message already kept is updated (its place, and its facts replaced) when `replace`,
        else left as it is (training reads mail that may have been filed before).
        """
        at = now()
        fresh = 0
        with self.transaction():
            known = self._known_mail(account, [m.header_hash for m in mail])
            if not replace:
                mail = [m for m in mail if m.header_hash not in known]
                keep = {m.header_hash for m in mail}
                facts = [f for f in facts if f.header_hash in keep]
            fresh = sum(m.header_hash not in known for m in mail)
            self.db.executemany(
                "INSERT INTO mail (account, header_hash, message_id, sender, sender_name, "
                "vendor, subject, sent_at, folder, role, thread, refs, recipients, bulk, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (account, header_hash) DO UPDATE SET folder=excluded.folder, "
                "role=excluded.role",
                [
                    (
                        account,
                        m.header_hash,
                        m.message_id,
                        m.sender,
                        m.sender_name,
                        m.vendor,
                        m.subject,
                        m.sent_at,
                        m.folder,
                        m.role,
                        m.thread,
                        m.refs,
                        m.recipients,
                        int(m.bulk),
                        at,
                    )
                    for m in mail
                ],
            )
            self.db.executemany(
                "DELETE FROM facts WHERE account=? AND header_hash=?",
                [(account, m.header_hash) for m in mail],
            )
            self.db.executemany(
                "INSERT INTO facts (account, header_hash, vendor, kind, said_at, amount, "
                "currency, due, detail, reference, status) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        account,
                        f.header_hash,
                        f.vendor,
                        f.kind,
                        f.said_at,
                        f.amount,
                        f.currency,
                        f.due,
                        f.detail,
                        f.reference,
                        f.status,
                    )
                    for f in facts
                ],
            )
        return fresh

    def _known_mail(self, account: str, header_hashes: Sequence[str]) -> set[str]:
        return self._matching(
            "SELECT header_hash FROM mail WHERE account=? AND header_hash IN ({marks})",
            (account,),
            header_hashes,
        )

    def move_mail(self, account: str, places: Sequence[tuple[str, str, str]]) -> None:
        """(header hash, folder, role): where kept messages are now (the buyer moved them, or
        a move failed and they stayed in the inbox)."""
        with self.transaction():
            self.db.executemany(
                "UPDATE mail SET folder=?, role=? WHERE account=? AND header_hash=?",
                [(folder, role, account, digest) for digest, folder, role in places],
            )

    def mail(self, account: str, since: str = "") -> list[MailRecord]:
        """Kept messages dated `since` (ISO) or later, oldest first."""
        rows = self.db.execute(
            "SELECT header_hash, message_id, sender, sender_name, vendor, subject, sent_at, "
            "folder, role, thread, refs, recipients, bulk FROM mail "
            "WHERE account=? AND sent_at>=? ORDER BY sent_at, id",
            (account, since),
        ).fetchall()
        return [_mail_record(row) for row in rows]

    def first_contact(self, account: str) -> dict[str, str]:
        """vendor -> the date of its earliest kept message."""
        rows = self.db.execute(
            "SELECT vendor, MIN(sent_at) FROM mail WHERE account=? AND role!='sent' "
            "AND vendor!='' GROUP BY vendor",
            (account,),
        ).fetchall()
        return {row[0]: row[1] for row in rows}

    def last_in_folders(self, account: str, until: str) -> dict[str, str]:
        """folder -> the date of its latest kept message before `until`."""
        rows = self.db.execute(
            "SELECT folder, MAX(sent_at) FROM mail WHERE account=? AND role!='sent' "
            "AND sent_at<? GROUP BY folder",
            (account, until),
        ).fetchall()
        return {row[0]: row[1] for row in rows}

    def facts(self, account: str) -> list[FactRecord]:
        """Every kept fact of the account, in the order found."""
        rows = self.db.execute(
            "SELECT header_hash, vendor, kind, said_at, amount, currency, due, detail, "
            "reference, status FROM facts WHERE account=? ORDER BY id",
            (account,),
        ).fetchall()
        return [FactRecord(*row) for row in rows]

    def examples_between(
        self, account: str, kinds: Sequence[str], start: str, end: str
    ) -> list[tuple[str, str, str | None, str]]:
        """(sender, label, previous, kind) of the examples of `kinds` recorded in [start, end)."""
        rows = self.db.execute(
            f"SELECT sender, label, previous, kind FROM examples WHERE account=? AND "
            f"kind IN ({','.join('?' * len(kinds))}) AND at>=? AND at<? ORDER BY id",
            (account, *kinds, start, end),
        ).fetchall()
        return [(row[0], row[1], row[2], row[3]) for row in rows]

    def digest_delivered(self, account: str, week: str) -> str | None:
        """The Message-ID of the digest delivered for `week`, if any."""
        row = self.db.execute(
            "SELECT message_id FROM digests WHERE account=? AND week=?", (account, week)
        ).fetchone()
        return None if row is None else str(row[0])

    def record_digest(self, account: str, week: str, message_id: str) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO digests (account, week, message_id, at) "
                "VALUES (?, ?, ?, ?)",
                (account, week, message_id, now()),
            )

    def counts_by_destination(self, account: str, since: str) -> dict[str, int]:
        """Messages per destination decided since `since`; a message decided twice (its batch
        was read again after a crash) counts once, where it was last decided."""
        rows = self.db.execute(
            "SELECT destination, COUNT(*) FROM decisions AS d WHERE account=? AND at>=? "
            "AND id = (SELECT MAX(id) FROM decisions WHERE account=d.account "
            "AND header_hash=d.header_hash) "
            "GROUP BY destination ORDER BY COUNT(*) DESC",
            (account, since),
        ).fetchall()
        return {row[0]: int(row[1]) for row in rows}


class AccountLock:
    """An exclusive lock per account, so two `triage run` never race on one mailbox.

    A file lock (flock) is released by the kernel when the process dies, even by kill -9, so a
    crash never leaves a stale lock behind.
    """

    def __init__(self, directory: Path, account: str) -> None:
        self.path = directory / f"{account}.lock"
        self.account = account
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Held open for the life of the lock: closing the file would release it. Created 0600
        # like every state file (it says which process works on the account).
        handle = os.fdopen(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600), "r+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise StoreError(
                f"account {self.account!r} is being worked on by another triage process "
                f"(pid {holder}); stop it first, or wait for it to finish"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> AccountLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

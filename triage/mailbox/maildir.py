"""The Maildir++ backend: the same interface over a local tree (demo, evaluation, mbsync users).

Layout: the root is INBOX; folder `A/B` is the directory `.A.B` (names in IMAP modified UTF-7,
as Dovecot and mbsync write them). Maildir has no UIDs, so each folder keeps a small
`triage-uidlist` file mapping the unique part of each file name to a UID, with a UIDVALIDITY;
it is rewritten atomically under a lock, so triage and a sync tool can share the tree.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from triage.errors import MailboxError
from triage.mailbox import utf7
from triage.mailbox.base import (
    ROLE_BY_NAME,
    FetchedMessage,
    Folder,
    FolderState,
    Mailbox,
    MoveResult,
    message_id_from_header,
)

log = logging.getLogger(__name__)

UIDLIST = "triage-uidlist"
_FLAG_LETTERS = {
    "D": "\\Draft",
    "F": "\\Flagged",
    "R": "\\Answered",
    "S": "\\Seen",
    "T": "\\Deleted",
}
_LETTER_FOR = {flag.lower(): letter for letter, flag in _FLAG_LETTERS.items()}
_counter = 0


@dataclass
class _UidList:
    uidvalidity: int
    nextuid: int
    by_key: dict[str, int] = field(default_factory=dict)


def _key(filename: str) -> str:
    """The unique part of a Maildir file name (what stays when its flags change)."""
    return filename.split(":", 1)[0]


def _flags(filename: str) -> frozenset[str]:
    _, sep, info = filename.partition(":2,")
    if not sep:
        return frozenset()
    return frozenset(_FLAG_LETTERS[c] for c in info if c in _FLAG_LETTERS)


def new_filename(size: int) -> str:
    """A unique Maildir name with the exact size, as Dovecot writes them (`,S=` is read back)."""
    global _counter
    _counter += 1
    now = time.time()
    micro = int((now % 1) * 1_000_000)
    host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
    return f"{int(now)}.M{micro}P{os.getpid()}Q{_counter}.{host},S={size}"


class MaildirMailbox(Mailbox):
    """A Maildir++ tree on disk."""

    def __init__(self, root: Path, *, create: bool = False, poll_interval: float = 1.0) -> None:
        self.root = Path(root).expanduser()
        self.create = create
        self.poll_interval = poll_interval
        self.capabilities = frozenset({"MOVE", "UIDPLUS"})
        self._selected: str | None = None
        self._files: dict[int, Path] = {}

    # -- connection ---------------------------------------------------------------------------

    def connect(self) -> None:
        if not (self.root / "cur").is_dir():
            if not self.create:
                raise MailboxError(
                    f"{self.root}: not a Maildir (no cur/ directory); check the account's path"
                )
            for sub in ("cur", "new", "tmp"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        self._selected = None
        self.selected_state = None
        self._files = {}

    # -- names ---------------------------------------------------------------------------------

    def folder_path(self, name: str) -> Path:
        if name.upper() == "INBOX":
            return self.root
        parts = name.split("/")
        if any(not part or "." in part for part in parts):
            raise MailboxError(
                f"folder {name!r}: Maildir++ names cannot have empty parts or contain '.'; "
                "rename the folder"
            )
        return self.root / ("." + ".".join(utf7.encode(part) for part in parts))

    def _folder_names(self) -> list[str]:
        names = ["INBOX"]
        with contextlib.suppress(FileNotFoundError):
            for entry in sorted(os.listdir(self.root)):
                is_folder = entry.startswith(".") and entry not in (".", "..") and len(entry) > 1
                if is_folder and (self.root / entry / "cur").is_dir():
                    names.append("/".join(utf7.decode(p) for p in entry[1:].split(".")))
        return names

    # -- folders -------------------------------------------------------------------------------

    def list_folders(self) -> list[Folder]:
        real = self._folder_names()
        folders: dict[str, Folder] = {}
        for name in real:
            parts = name.split("/")
            for depth in range(1, len(parts)):  # parents that exist only by implication
                parent = "/".join(parts[:depth])
                folders.setdefault(
                    parent, Folder(parent, "/", None, ("\\Noselect",), selectable=False)
                )
            role = "inbox" if name == "INBOX" else ROLE_BY_NAME.get(name.lower())
            folders[name] = Folder(name, "/", role, (), selectable=True)
        return list(folders.values())

    def create_folder(self, name: str) -> None:
        parts = name.split("/")
        for depth in range(1, len(parts) + 1):
            path = self.folder_path("/".join(parts[:depth]))
            if (path / "cur").is_dir():
                continue
            for sub in ("cur", "new", "tmp"):
                (path / sub).mkdir(parents=True, exist_ok=True)
            (path / "maildirfolder").touch()
            log.info("created folder %s", "/".join(parts[:depth]))

    def _existing(self, name: str) -> Path:
        path = self.folder_path(name)
        if not (path / "cur").is_dir():
            raise MailboxError(f"folder {name!r} does not exist in {self.root}")
        return path

    def select(self, name: str) -> FolderState:
        path = self._existing(name)
        uidlist, files = self._refresh(path)
        state = FolderState(name, uidlist.uidvalidity, uidlist.nextuid, len(files))
        self._selected = name
        self.selected_state = state
        self._files = files
        return state

    def status(self, name: str) -> FolderState:
        uidlist, files = self._refresh(self._existing(name))
        return FolderState(name, uidlist.uidvalidity, uidlist.nextuid, len(files))

    def _require_selected(self) -> Path:
        if self._selected is None:
            raise MailboxError("no folder selected (internal error: call select first)")
        return self._existing(self._selected)

    # -- the UID list --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        with open(path / f"{UIDLIST}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read_uidlist(self, path: Path) -> _UidList:
        try:
            lines = (path / UIDLIST).read_text("utf-8").splitlines()
        except FileNotFoundError:
            return _UidList(int(time.time()), 1)
        try:
            validity, nextuid = (int(v) for v in lines[0].split())
            by_key = {}
            for line in lines[1:]:
                uid, key = line.split(" ", 1)
                by_key[key] = int(uid)
        except (ValueError, IndexError):
            log.warning("%s: unreadable %s; starting a new UIDVALIDITY", path, UIDLIST)
            return _UidList(int(time.time()), 1)
        return _UidList(validity, nextuid, by_key)

    def _write_uidlist(self, path: Path, uidlist: _UidList) -> None:
        lines = [f"{uidlist.uidvalidity} {uidlist.nextuid}"]
        lines += [f"{uid} {key}" for key, uid in sorted(uidlist.by_key.items(), key=lambda i: i[1])]
        tmp = path / f"{UIDLIST}.tmp"
        tmp.write_text("\n".join(lines) + "\n", "utf-8")
        os.replace(tmp, path / UIDLIST)

    def _scan(self, path: Path) -> dict[str, Path]:
        files = {}
        for sub in ("new", "cur"):
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(path / sub):
                    if not entry.name.startswith("."):
                        files[_key(entry.name)] = Path(entry.path)
        return files

    def _refresh(self, path: Path) -> tuple[_UidList, dict[int, Path]]:
        """Give new files UIDs (in name order, which is arrival order) and forget gone ones."""
        with self._locked(path):
            uidlist = self._read_uidlist(path)
            on_disk = self._scan(path)
            changed = False
            for key in [k for k in uidlist.by_key if k not in on_disk]:
                del uidlist.by_key[key]
                changed = True
            for key in sorted(k for k in on_disk if k not in uidlist.by_key):
                uidlist.by_key[key] = uidlist.nextuid
                uidlist.nextuid += 1
                changed = True
            if changed or not (path / UIDLIST).exists():
                self._write_uidlist(path, uidlist)
        return uidlist, {uid: on_disk[key] for key, uid in uidlist.by_key.items()}

    def _current_files(self) -> dict[int, Path]:
        _uidlist, self._files = self._refresh(self._require_selected())
        return self._files

    # -- messages ------------------------------------------------------------------------------

    def uids_above(self, uid: int) -> list[int]:
        return sorted(u for u in self._current_files() if u > uid)

    def fetch(
        self, uids: Sequence[int], *, max_bytes: int, batch_size: int = 1000
    ) -> Iterator[FetchedMessage]:
        files = self._current_files()
        for uid in sorted(uids):
            path = files.get(uid)
            if path is None:
                continue
            try:
                with open(path, "rb") as handle:
                    size = os.fstat(handle.fileno()).st_size
                    data = _header_and_body(handle, max_bytes)
            except FileNotFoundError:  # moved away by another program since the scan
                continue
            except OSError as exc:
                raise MailboxError(f"{path}: cannot read ({exc.strerror})") from None
            yield FetchedMessage(uid, data, size, _flags(path.name))

    def fetch_message_ids(self, uids: Sequence[int], *, batch_size: int = 2000) -> dict[int, str]:
        files = self._current_files()
        ids = {}
        for uid in uids:
            path = files.get(uid)
            if path is None:
                continue
            with contextlib.suppress(FileNotFoundError), open(path, "rb") as handle:
                ids[uid] = message_id_from_header(_header_and_body(handle, 0))
        return ids

    def search_message_id(self, message_id: str) -> list[int]:
        if not message_id:
            return []
        ids = self.fetch_message_ids(list(self._current_files()))
        return sorted(uid for uid, mid in ids.items() if mid == message_id)

    def move(self, uids: Sequence[int], destination: str) -> MoveResult:
        source = self._require_selected()
        target = self._existing(destination)
        files = self._current_files()
        moved: dict[int, int] = {}
        with self._locked(target):
            dest_list = self._read_uidlist(target)
            for uid in sorted(set(uids)):
                path = files.get(uid)
                if path is None:
                    continue
                new_path = target / path.parent.name / path.name
                try:
                    os.rename(path, new_path)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise MailboxError(
                        f"moving {path.name} to {destination!r} failed ({exc.strerror})"
                    ) from None
                dest_list.by_key[_key(path.name)] = dest_list.nextuid
                moved[uid] = dest_list.nextuid
                dest_list.nextuid += 1
            self._write_uidlist(target, dest_list)
        self._refresh(source)
        return MoveResult(len(moved), moved)

    def delete(self, uids: Sequence[int]) -> int:
        files = self._current_files()
        removed = 0
        for uid in set(uids):
            path = files.get(uid)
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
        self._current_files()
        return removed

    def append(
        self,
        folder: str,
        data: bytes,
        *,
        flags: Iterable[str] = (),
        date: datetime | None = None,
    ) -> int | None:
        path = self._existing(folder)
        letters = "".join(sorted(_LETTER_FOR[f.lower()] for f in flags if f.lower() in _LETTER_FOR))
        name = new_filename(len(data))
        tmp = path / "tmp" / name
        with open(tmp, "wb") as handle:
            handle.write(data)
        if date is not None:
            os.utime(tmp, (date.timestamp(), date.timestamp()))
        final = path / "cur" / f"{name}:2,{letters}" if letters else path / "new" / name
        os.rename(tmp, final)
        with self._locked(path):
            uidlist = self._read_uidlist(path)
            uid = uidlist.by_key.setdefault(_key(name), uidlist.nextuid)
            if uid == uidlist.nextuid:
                uidlist.nextuid += 1
            self._write_uidlist(path, uidlist)
        return uid

    # -- waiting -------------------------------------------------------------------------------

    def _stamp(self, path: Path) -> tuple[int, ...]:
        stamps = []
        for sub in ("new", "cur"):
            try:
                stamps.append((path / sub).stat().st_mtime_ns)
            except FileNotFoundError:
                stamps.append(0)
        return tuple(stamps)

    def wait(self, timeout: float, stop: Callable[[], bool] | None = None) -> bool:
        path = self._require_selected()
        before = self._stamp(path)
        deadline = time.monotonic() + timeout
        while True:
            if self._stamp(path) != before:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (stop is not None and stop()):
                return False
            time.sleep(min(remaining, self.poll_interval))


def _header_and_body(handle: BinaryIO, max_bytes: int) -> bytes:
    """The header block in full, then at most `max_bytes` of the body."""
    head = bytearray()
    while True:
        chunk = handle.read(65536)
        if not chunk:
            return bytes(head)
        head += chunk
        ends = [(i, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (i := head.find(sep)) >= 0]
        if ends:
            end, length = min(ends)
            needed = end + length + max_bytes
            if len(head) < needed:
                head += handle.read(needed - len(head))
            return bytes(head[:needed])

"""The one interface every mail store offers triage, and the values it returns.

Two backends implement it: `imap.ImapMailbox` (a real server, through imapclient) and
`maildir.MaildirMailbox` (a local Maildir++ tree). Everything above this package talks to a
`Mailbox` and never knows which one it has.
"""

from __future__ import annotations

import ipaddress
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

# Special-use flags (RFC 6154) and the role names triage gives them.
SPECIAL_USE = {
    "\\sent": "sent",
    "\\drafts": "drafts",
    "\\trash": "trash",
    "\\junk": "junk",
    "\\archive": "archive",
    "\\all": "all",
    "\\flagged": "flagged",
}

# Where a store has no special-use metadata (Maildir, IMAP servers without SPECIAL-USE), these
# common names stand in for it.
ROLE_BY_NAME = {
    "sent": "sent",
    "sent items": "sent",
    "sent messages": "sent",
    "sent mail": "sent",
    "drafts": "drafts",
    "trash": "trash",
    "deleted items": "trash",
    "deleted messages": "trash",
    "junk": "junk",
    "spam": "junk",
    "archive": "archive",
}

CAPABILITIES_THAT_MATTER = ("MOVE", "IDLE", "UIDPLUS", "CONDSTORE", "SPECIAL-USE")

SEEN = "\\Seen"

_BRACKETED = re.compile(r"<[^<>\s]*>")
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Folder:
    """One folder as the store lists it."""

    name: str  # decoded (Unicode) name, hierarchy joined by `delimiter`
    delimiter: str
    role: str | None  # "inbox", "sent", "trash", "junk", "drafts", "archive", "all", ...
    flags: tuple[str, ...]
    selectable: bool = True


@dataclass(frozen=True, slots=True)
class FolderState:
    """What selecting a folder tells: the identity of its UIDs and where they will continue."""

    name: str
    uidvalidity: int
    uidnext: int
    exists: int


@dataclass(frozen=True, slots=True)
class FetchedMessage:
    """One message's raw bytes (possibly capped) and what the store knows about it."""

    uid: int
    data: bytes  # full header + at most `max_bytes` of the body
    size: int  # the full size on the server
    flags: frozenset[str]

    @property
    def truncated(self) -> bool:
        return len(self.data) < self.size

    @property
    def seen(self) -> bool:
        return SEEN in self.flags


@dataclass(frozen=True, slots=True)
class MoveResult:
    """What a move did: how many messages, and their new UIDs where the store told us."""

    moved: int
    new_uids: dict[int, int]  # source UID -> destination UID (empty when unknown)


def message_id_from_header(header: bytes) -> str:
    """The Message-ID in a raw header block as `message.parse` gives it: "<id@host>"; "" if none."""
    match = _MESSAGE_ID.search(header)
    if not match:
        return ""
    value = re.sub(rb"\r?\n[ \t]", b" ", match.group(1)).decode("ascii", "replace")
    bracketed = _BRACKETED.search(value)
    return bracketed.group(0) if bracketed else value.strip()[:200]


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (also [::1] or IPv4-mapped): where plaintext
    never leaves the machine."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def header_block(data: bytes) -> bytes:
    """The header of raw message bytes, up to and including the blank line that ends it."""
    ends = [i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := data.find(sep)) >= 0]
    return data[: min(ends)] if ends else data


def chunked(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    """`items` in consecutive slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Mailbox(ABC):
    """A mail store: folders of messages addressed by (folder, UIDVALIDITY, UID).

    Methods that work on messages act on the folder chosen with `select`. Every failure is
    a `MailboxError`; a lost connection is a `ConnectionLost` the caller may retry after
    reconnecting with `connect`.
    """

    #: Upper-case capability names the backend offers (for IMAP, what the server advertises).
    capabilities: frozenset[str] = frozenset()
    #: What the last `select` returned, while that folder is still selected on this connection.
    #: Its UIDVALIDITY cannot change while selected (a server would drop the connection), so a
    #: caller polling the selected folder can skip selecting it again.
    selected_state: FolderState | None = None

    def __enter__(self) -> Mailbox:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def has_idle(self) -> bool:
        return "IDLE" in self.capabilities

    @abstractmethod
    def connect(self) -> None:
        """Open (or re-open) the connection and log in."""

    @abstractmethod
    def close(self) -> None:
        """Log out and close; never raises."""

    @abstractmethod
    def list_folders(self) -> list[Folder]:
        """Every folder, with its special-use role where the store has one."""

    @abstractmethod
    def create_folder(self, name: str) -> None:
        """Create `name` (and missing parents); nothing happens if it exists."""

    @abstractmethod
    def select(self, name: str) -> FolderState:
        """Choose the folder later calls act on (read-write, nothing marked read)."""

    @abstractmethod
    def status(self, name: str) -> FolderState:
        """UIDVALIDITY, UIDNEXT and message count of a folder, without selecting it."""

    @abstractmethod
    def uids_above(self, uid: int) -> list[int]:
        """UIDs greater than `uid` in the selected folder, ascending."""

    @abstractmethod
    def fetch(
        self, uids: Sequence[int], *, max_bytes: int, batch_size: int = 1000
    ) -> Iterator[FetchedMessage]:
        """The messages with these UIDs, header plus at most `max_bytes` of body.

        Never sets \\Seen. UIDs that no longer exist are skipped.
        """

    @abstractmethod
    def fetch_message_ids(self, uids: Sequence[int], *, batch_size: int = 2000) -> dict[int, str]:
        """Message-ID (without <>) of each UID, "" where the message has none; header only."""

    @abstractmethod
    def move(self, uids: Sequence[int], destination: str) -> MoveResult:
        """Move these UIDs of the selected folder into `destination`, in one command.

        The destination must exist. Other messages in the folder are never touched.
        """

    @abstractmethod
    def delete(self, uids: Sequence[int]) -> int:
        """Remove these UIDs of the selected folder (and only them); returns how many.

        Used only to finish a move that a crash interrupted after the copy.
        """

    @abstractmethod
    def append(
        self,
        folder: str,
        data: bytes,
        *,
        flags: Iterable[str] = (),
        date: datetime | None = None,
    ) -> int | None:
        """Add a message to `folder`; returns its UID where the store says it."""

    @abstractmethod
    def search_message_id(self, message_id: str) -> list[int]:
        """UIDs in the selected folder whose Message-ID header is `message_id`."""

    @abstractmethod
    def wait(self, timeout: float, stop: Callable[[], bool] | None = None) -> bool:
        """Block until the selected folder may have changed, `timeout` seconds pass, or
        `stop()` turns true (checked about once a second).

        Returns True when something happened (new or removed messages). Uses IDLE where the
        server has it, polling otherwise; either way a caller then asks `uids_above`.
        """

"""The IMAP backend: the only module that imports imapclient.

Folder names above this module always use "/" as the hierarchy separator and never carry the
server's personal-namespace prefix; this module translates both ways, so a config written for
Dovecot (`Vendors/Acme`) also works on a Courier-style server (`INBOX.Vendors.Acme`).
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import imapclient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from triage.errors import AuthError, ConnectionLost, MailboxError, TLSError
from triage.mailbox.base import (
    ROLE_BY_NAME,
    SPECIAL_USE,
    FetchedMessage,
    Folder,
    FolderState,
    Mailbox,
    MoveResult,
    chunked,
    is_loopback,
    message_id_from_header,
)

log = logging.getLogger(__name__)

SECURITY_MODES = ("tls", "starttls", "plain")
# RFC 2177 says servers may drop an idle client after 30 minutes; re-issue IDLE before that.
MAX_IDLE_REFRESH = 29 * 60
_DELETED = b"\\Deleted"
_CHANGES = {b"EXISTS", b"EXPUNGE", b"RECENT"}
_UIDPLUS_CODE = re.compile(rb"\[(?:COPYUID|APPENDUID) ([0-9]+) ([0-9:,]+)(?: ([0-9:,]+))?\]")


def parse_uid_set(text: bytes | str) -> list[int]:
    """`1:3,7` -> [1, 2, 3, 7] (a UID set as servers send it in COPYUID/APPENDUID)."""
    if isinstance(text, bytes):
        text = text.decode("ascii")
    uids: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition(":")
        start, end = int(low), int(high or low)
        uids.extend(range(min(start, end), max(start, end) + 1))
    return uids


class ImapMailbox(Mailbox):
    """A mailbox on an IMAP server.

    `secret` is called at every (re)connect, so a token command hands over a fresh OAuth2
    token after a reconnect; its value is passed to the server and kept nowhere else.
    """

    def __init__(
        self,
        host: str,
        user: str,
        secret: Callable[[], str],
        *,
        port: int | None = None,
        security: str = "tls",
        oauth2: bool = False,
        ca_file: Path | None = None,
        allow_plaintext: bool = False,
        timeout: float = 30.0,
        idle_refresh: float = 25 * 60,
        poll_interval: float = 60.0,
    ) -> None:
        if security not in SECURITY_MODES:
            raise MailboxError(f"unknown security mode {security!r}; use one of {SECURITY_MODES}")
        self.host = host
        self.user = user
        self.port = port or (993 if security == "tls" else 143)
        self.security = security
        self.oauth2 = oauth2
        self.ca_file = ca_file
        self.allow_plaintext = allow_plaintext
        self.timeout = timeout
        # A big MOVE or SEARCH may keep a slow server silent for a while: commands get at least
        # this long; IDLE, DONE and NOOP, which a live server answers at once, get `timeout`.
        self.read_timeout = max(timeout, 120.0)
        self.idle_refresh = min(idle_refresh, MAX_IDLE_REFRESH)
        self.poll_interval = poll_interval
        self._secret = secret
        self._client: Any = None
        self._delimiter = "/"
        self._prefix = ""
        self._selected: str | None = None
        self.capabilities = frozenset()

    # -- connection ---------------------------------------------------------------------------

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        """Certificate and hostname checks always on; `ca_file` adds trust, never removes it."""
        context = ssl.create_default_context()
        if self.ca_file is not None:
            try:
                context.load_verify_locations(cafile=str(self.ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise TLSError(
                    f"ca_file {self.ca_file}: cannot load it as PEM certificates ({exc}); "
                    "fix the path or remove ca_file"
                ) from None
        return context

    def connect(self) -> None:
        self.close()
        if self.security == "plain" and not is_loopback(self.host):
            if not self.allow_plaintext:
                raise MailboxError(
                    f"{self.where}: refusing to send the password unencrypted; use "
                    'security = "tls" or "starttls", or set allow_plaintext = true'
                )
            log.warning(
                "%s: plaintext IMAP (allow_plaintext = true): the password is sent unencrypted",
                self.where,
            )
        timeout = imapclient.SocketTimeout(connect=self.timeout, read=self.read_timeout)
        with self._errors("connecting"):
            if self.security == "tls":
                client = imapclient.IMAPClient(
                    self.host,
                    self.port,
                    ssl=True,
                    ssl_context=self.ssl_context(),
                    timeout=timeout,
                )
            else:
                client = imapclient.IMAPClient(self.host, self.port, ssl=False, timeout=timeout)
        self._client = client
        try:
            if self.security == "starttls":
                with self._errors("starting TLS"):
                    if not client.has_capability("STARTTLS"):
                        raise TLSError(
                            f"{self.where}: the server does not offer STARTTLS; use "
                            'security = "tls" (usually port 993)'
                        )
                    client.starttls(self.ssl_context())
            self._login()
            with self._errors("reading capabilities"):
                self.capabilities = frozenset(
                    c.decode("ascii", "replace").upper() for c in client.capabilities()
                )
                self._read_namespace()
        except BaseException:
            self.close()
            raise
        log.debug(
            "%s: connected as %s; capabilities %s",
            self.where,
            self.user,
            " ".join(sorted(self.capabilities)),
        )

    def _login(self) -> None:
        secret = self._secret()
        try:
            if self.oauth2:
                self._client.oauth2_login(self.user, secret)
            else:
                self._client.login(self.user, secret)
        except LoginError as exc:
            reason = _server_text(exc)
            method = "OAuth2 token" if self.oauth2 else "password"
            raise AuthError(
                f"{self.where}: login as {self.user} failed ({reason}); check the {method} "
                "source in the config" + (" (the token may have expired)" if self.oauth2 else "")
            ) from None
        except (IMAPClientAbortError, OSError) as exc:
            raise ConnectionLost(
                f"{self.where}: connection lost while logging in ({exc})"
            ) from None
        finally:
            del secret

    def _read_namespace(self) -> None:
        """Learn the hierarchy delimiter and personal prefix (e.g. "INBOX." on Courier)."""
        self._delimiter, self._prefix = "/", ""
        if "NAMESPACE" in self.capabilities:
            personal = self._client.namespace().personal
            if personal:
                prefix, delimiter = personal[0]
                self._prefix = prefix or ""
                self._delimiter = delimiter or "/"
                return
        for _flags, delimiter, _name in self._client.list_folders(pattern="%")[:1]:
            if delimiter:
                self._delimiter = delimiter.decode() if isinstance(delimiter, bytes) else delimiter

    def close(self) -> None:
        client, self._client, self._selected = self._client, None, None
        self.selected_state = None
        if client is None:
            return
        # Closing must never raise: the socket may already be gone.
        try:
            client.logout()
        except Exception:
            with suppress(Exception):
                client.shutdown()

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn library and socket errors into MailboxErrors that name the server and action."""
        try:
            yield
        except MailboxError:
            raise
        except ssl.SSLCertVerificationError as exc:
            raise TLSError(
                f"{self.where}: the server's TLS certificate was rejected "
                f"({exc.verify_message}); if it uses a private CA, set ca_file to its PEM file"
            ) from None
        except ssl.SSLError as exc:
            raise TLSError(f"{self.where}: TLS failed while {action} ({exc.reason})") from None
        except socket.gaierror as exc:
            raise MailboxError(
                f"{self.host}: host not found ({exc.strerror}); check the host in the config",
                retryable=True,
            ) from None
        except ConnectionRefusedError:
            raise ConnectionLost(
                f"{self.where}: connection refused; is the server up and the port right?"
            ) from None
        except TimeoutError:
            # The answer may still come later and be taken for the next command's: the session
            # is unusable, and a LOGOUT on it would only wait out another timeout.
            self._drop()
            raise ConnectionLost(f"{self.where}: timed out while {action}") from None
        except IMAPClientAbortError as exc:
            self._drop()
            raise ConnectionLost(f"{self.where}: connection lost while {action} ({exc})") from None
        except (OSError, EOFError) as exc:
            self._drop()
            raise ConnectionLost(f"{self.where}: connection lost while {action} ({exc})") from None
        except IMAPClientError as exc:
            raise MailboxError(
                f"{self.where}: {action} failed: the server said {_server_text(exc)}"
            ) from None

    def _drop(self) -> None:
        """Forget a broken connection without talking to the server; never raises."""
        client, self._client, self._selected = self._client, None, None
        self.selected_state = None
        if client is not None:
            with suppress(Exception):
                client.shutdown()

    @contextmanager
    def _quick_answer(self) -> Iterator[None]:
        """Wait at most `timeout` for the answer to a command a live server answers at once
        (IDLE, DONE, NOOP), so a connection that died silently while idling (a NAT entry
        dropped, a stalled peer) shows within seconds instead of the 120 s read timeout."""
        sock = self.client.socket()
        sock.settimeout(self.timeout)
        try:
            yield
        finally:
            with suppress(OSError):
                sock.settimeout(self.read_timeout)

    @property
    def client(self) -> Any:
        if self._client is None:
            raise ConnectionLost(f"{self.where}: not connected")
        return self._client

    # -- names ---------------------------------------------------------------------------------

    def to_server(self, name: str) -> str:
        if name.upper() == "INBOX":
            return "INBOX"
        server = name.replace("/", self._delimiter) if self._delimiter != "/" else name
        if self._prefix and not server.startswith(self._prefix):
            server = self._prefix + server
        return server

    def from_server(self, name: str, delimiter: str | None) -> str:
        if name.upper() == "INBOX":
            return "INBOX"
        if self._prefix and name.startswith(self._prefix) and name != self._prefix:
            name = name[len(self._prefix) :]
        if delimiter and delimiter != "/":
            name = name.replace(delimiter, "/")
        return name

    # -- folders -------------------------------------------------------------------------------

    def list_folders(self) -> list[Folder]:
        with self._errors("listing folders"):
            listing = self.client.list_folders()
        folders = []
        for raw_flags, raw_delimiter, name in listing:
            flags = tuple(
                f.decode("ascii", "replace") if isinstance(f, bytes) else str(f) for f in raw_flags
            )
            delimiter = (
                raw_delimiter.decode() if isinstance(raw_delimiter, bytes) else raw_delimiter
            ) or self._delimiter
            lowered = {f.lower() for f in flags}
            role = "inbox" if name.upper() == "INBOX" else None
            for flag in lowered:
                role = SPECIAL_USE.get(flag, role)
            if role is None and "SPECIAL-USE" not in self.capabilities:
                role = ROLE_BY_NAME.get(self.from_server(name, delimiter).lower())
            selectable = not ({"\\noselect", "\\nonexistent"} & lowered)
            folders.append(Folder(self.from_server(name, delimiter), "/", role, flags, selectable))
        return folders

    def create_folder(self, name: str) -> None:
        existing = {f.name for f in self.list_folders()}
        parts = name.split("/")
        for depth in range(1, len(parts) + 1):
            path = "/".join(parts[:depth])
            if path in existing or path.upper() == "INBOX":
                continue
            with self._errors(f"creating folder {path!r}"):
                try:
                    self.client.create_folder(self.to_server(path))
                except IMAPClientError as exc:
                    # Another client may have created it in between: that is success.
                    if "ALREADYEXISTS" not in str(exc).upper():
                        raise
            existing.add(path)
            log.info("created folder %s", path)

    def select(self, name: str) -> FolderState:
        with self._errors(f"selecting folder {name!r}"):
            info = self.client.select_folder(self.to_server(name))
            uidnext = info.get(b"UIDNEXT")
            if uidnext is None:  # Not every server sends it on SELECT; STATUS always can.
                status = self.client.folder_status(self.to_server(name), [b"UIDNEXT"])
                uidnext = status[b"UIDNEXT"]
        state = FolderState(name, int(info[b"UIDVALIDITY"]), int(uidnext), int(info[b"EXISTS"]))
        # SELECT's own EXISTS describes the state just read, not a change to wake a wait for.
        self._pending_changes()
        self._selected = name
        self.selected_state = state
        return state

    def status(self, name: str) -> FolderState:
        with self._errors(f"reading the status of {name!r}"):
            info = self.client.folder_status(
                self.to_server(name), [b"UIDVALIDITY", b"UIDNEXT", b"MESSAGES"]
            )
        return FolderState(
            name, int(info[b"UIDVALIDITY"]), int(info[b"UIDNEXT"]), int(info[b"MESSAGES"])
        )

    def _require_selected(self) -> str:
        if self._selected is None:
            raise MailboxError("no folder selected (internal error: call select first)")
        return self._selected

    # -- messages ------------------------------------------------------------------------------

    def uids_above(self, uid: int) -> list[int]:
        folder = self._require_selected()
        with self._errors(f"searching {folder!r}"):
            found = self.client.search(["UID", f"{uid + 1}:*"])
        # "n:*" always matches the highest UID, even when it is below n (RFC 3501 6.4.8).
        return sorted(u for u in found if u > uid)

    def fetch(
        self, uids: Sequence[int], *, max_bytes: int, batch_size: int = 1000
    ) -> Iterator[FetchedMessage]:
        folder = self._require_selected()
        text_key = b"BODY[TEXT]<0>"
        items = ["BODY.PEEK[HEADER]", f"BODY.PEEK[TEXT]<0.{max_bytes}>", "RFC822.SIZE", "FLAGS"]
        for batch in chunked(sorted(uids), batch_size):
            with self._errors(f"fetching from {folder!r}"):
                response = self.client.fetch(list(batch), items)
            for uid in batch:
                item = response.get(uid)
                if item is None:  # expunged since the search
                    continue
                header = item.get(b"BODY[HEADER]") or b""
                text = item.get(text_key)
                if text is None:  # servers differ in how they echo the partial's origin
                    text = next((v for k, v in item.items() if k.startswith(b"BODY[TEXT]")), b"")
                yield FetchedMessage(
                    uid=uid,
                    data=header + (text or b""),
                    size=int(item.get(b"RFC822.SIZE", 0)),
                    # \Recent is per-session (RFC 3501) and says nothing about the message.
                    flags=frozenset(_flag_text(f) for f in item.get(b"FLAGS", ())) - {"\\Recent"},
                )

    def fetch_message_ids(self, uids: Sequence[int], *, batch_size: int = 2000) -> dict[int, str]:
        folder = self._require_selected()
        ids: dict[int, str] = {}
        for batch in chunked(sorted(uids), batch_size):
            with self._errors(f"reading Message-IDs in {folder!r}"):
                response = self.client.fetch(list(batch), ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
            for uid, item in response.items():
                header = next((v for k, v in item.items() if k.startswith(b"BODY[HEADER")), b"")
                ids[uid] = message_id_from_header(header or b"")
        return ids

    def search_message_id(self, message_id: str) -> list[int]:
        folder = self._require_selected()
        if not message_id:
            return []
        with self._errors(f"searching {folder!r} by Message-ID"):
            candidates = self.client.search(["HEADER", "Message-ID", message_id])
        if not candidates:
            return []
        # SEARCH HEADER matches substrings; keep only exact Message-IDs.
        ids = self.fetch_message_ids(candidates)
        return sorted(uid for uid, mid in ids.items() if mid == message_id)

    def move(self, uids: Sequence[int], destination: str) -> MoveResult:
        folder = self._require_selected()
        uids = sorted(set(uids))
        if not uids:
            return MoveResult(0, {})
        target = self.to_server(destination)
        action = f"moving {len(uids)} messages from {folder!r} to {destination!r}"
        with self._errors(action):
            self._pop_untagged("COPYUID")
            if "MOVE" in self.capabilities:
                tagged = self.client.move(uids, target)
            else:
                tagged = self._copy_delete_expunge(uids, target)
            codes = [tagged if isinstance(tagged, bytes) else b"", *self._pop_untagged("COPYUID")]
        return MoveResult(len(uids), _copyuid_map(codes))

    def delete(self, uids: Sequence[int]) -> int:
        folder = self._require_selected()
        uids = sorted(set(uids))
        if not uids:
            return 0
        with self._errors(f"removing {len(uids)} messages from {folder!r}"):
            present = set(self.client.search(["UID", ",".join(map(str, uids))]))
            self._expunge_exactly(sorted(present))
        return len(present)

    def _copy_delete_expunge(self, uids: list[int], target: str) -> bytes:
        """MOVE for servers without it: copy, flag, and expunge exactly these UIDs."""
        tagged = self.client.copy(uids, target)
        self._expunge_exactly(uids)
        return tagged if isinstance(tagged, bytes) else b""

    def _expunge_exactly(self, uids: list[int]) -> None:
        if not uids:
            return
        self.client.add_flags(uids, [_DELETED], silent=True)
        if "UIDPLUS" in self.capabilities:
            self.client.uid_expunge(uids)
        else:
            # A plain EXPUNGE would also remove what the buyer deleted and kept around, so it
            # is only safe when our messages are the only ones flagged \Deleted.
            flagged = set(self.client.search(["DELETED"]))
            if flagged <= set(uids):
                self.client.expunge()
            else:
                log.warning(
                    "%s: no UIDPLUS and other messages are flagged \\Deleted; "
                    "left %d moved messages flagged \\Deleted in the source folder",
                    self.where,
                    len(uids),
                )

    def _pop_untagged(self, code: str) -> list[bytes]:
        """Response codes imaplib collected from untagged OK lines (e.g. COPYUID after MOVE)."""
        imap = getattr(self._client, "_imap", None)
        if imap is None:
            return []
        found = imap.untagged_responses.pop(code, [])
        return [code.encode() + b" " + d if isinstance(d, bytes) else b"" for d in found]

    def append(
        self,
        folder: str,
        data: bytes,
        *,
        flags: Iterable[str] = (),
        date: datetime | None = None,
    ) -> int | None:
        with self._errors(f"appending to {folder!r}"):
            response = self.client.append(self.to_server(folder), data, tuple(flags), date)
        match = _UIDPLUS_CODE.search(response if isinstance(response, bytes) else b"")
        if match:
            uids = parse_uid_set(match.group(2))
            return uids[-1] if uids else None
        return None

    # -- waiting -------------------------------------------------------------------------------

    def wait(self, timeout: float, stop: Callable[[], bool] | None = None) -> bool:
        folder = self._require_selected()
        if "IDLE" in self.capabilities:
            return self._idle(folder, timeout, stop or _never)
        return self._poll(folder, timeout, stop or _never)

    def _idle(self, folder: str, timeout: float, stop: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + timeout
        with self._errors(f"waiting (IDLE) on {folder!r}"):
            if self._pending_changes():
                return True
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                session_end = time.monotonic() + min(remaining, self.idle_refresh)
                with self._quick_answer():
                    self.client.idle()
                changed = early = False
                try:
                    # Short checks so a stop request is seen within a second; they cost no
                    # traffic. Keepalives ("* OK Still here") do not end the session: a message
                    # arriving while IDLE is being re-issued would be announced to no one.
                    while not changed and not stop():
                        left = session_end - time.monotonic()
                        if left <= 0:
                            break
                        started = time.monotonic()
                        got = self.client.idle_check(timeout=min(left, 1.0))
                        changed = any(_is_change(r) for r in got)
                        early = not got and time.monotonic() - started < min(left, 1.0) - 0.5
                        if early:
                            break
                finally:
                    with self._quick_answer():
                        _text, more = self.client.idle_done()
                if changed or any(_is_change(r) for r in more) or self._pending_changes():
                    return True
                if stop():
                    return False
                if early:
                    # idle_check returns nothing early when the socket hit EOF; DONE above
                    # would then have raised, so this was a harmless wakeup.
                    log.debug("%s: IDLE woke up with nothing to report", self.where)

    def _pending_changes(self) -> bool:
        """Whether the server announced new or removed messages alongside an earlier command's
        answer (imaplib keeps such untagged responses); taking them clears them."""
        imap = getattr(self._client, "_imap", None)
        if imap is None:
            return False
        found = False
        for kind in ("EXISTS", "RECENT", "EXPUNGE"):
            found = bool(imap.untagged_responses.pop(kind, None)) or found
        return found

    def _poll(self, folder: str, timeout: float, stop: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + timeout
        with self._errors(f"polling {folder!r}"):
            if self._pending_changes():
                return True
            while True:
                with self._quick_answer():
                    _text, responses = self.client.noop()
                if any(_is_change(r) for r in responses) or self._pending_changes():
                    return True
                next_poll = min(deadline, time.monotonic() + self.poll_interval)
                while time.monotonic() < next_poll:
                    if stop():
                        return False
                    time.sleep(min(1.0, next_poll - time.monotonic()))
                if time.monotonic() >= deadline:
                    return False


def _never() -> bool:
    return False


def _is_change(response: Any) -> bool:
    return isinstance(response, tuple) and len(response) >= 2 and response[1] in _CHANGES


def _flag_text(flag: Any) -> str:
    return flag.decode("utf-8", "replace") if isinstance(flag, bytes) else str(flag)


def _server_text(exc: BaseException) -> str:
    """The server's words in an imapclient error, without Python's bytes-literal decoration."""
    text = str(exc)
    match = re.fullmatch(r"""(?:\w+ command error: \w+ )?\[?b?['"](.*)['"]\]?""", text, re.S)
    return (match.group(1) if match else text).strip() or "no reason given"


def _copyuid_map(codes: Iterable[bytes]) -> dict[int, int]:
    mapping: dict[int, int] = {}
    for code in codes:
        for match in re.finditer(rb"COPYUID ([0-9]+) ([0-9:,]+) ([0-9:,]+)", code):
            source, dest = parse_uid_set(match.group(2)), parse_uid_set(match.group(3))
            if len(source) == len(dest):
                mapping.update(zip(source, dest, strict=True))
    return mapping

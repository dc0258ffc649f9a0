"""Private Dovecot IMAP servers on loopback for the tests (see DESIGN.md section 4).

Each `DovecotServer` runs its own `dovecot` master from a config generated in a fresh temp dir,
on free 127.0.0.1 ports, with its own users, Maildirs, log and sockets; the system's
/etc/dovecot and its service are never used. It works when run as root (CI) and as an ordinary
user. This is a plain module (no pytest) so benchmarks and scripts can use it as well:

    with DovecotServer() as server:
        account = server.new_account()
        server.seed(account.user, "INBOX", [b"Subject: hi\\r\\n\\r\\nbody\\r\\n"])

Written for Dovecot 2.3 (Debian 12 ships 2.3.19); 2.4 changed the config syntax.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import grp
import imaplib
import itertools
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType

from imapclient import imap_utf7

log = logging.getLogger(__name__)

HOST = "127.0.0.1"

#: What Dovecot 2.3.19 advertises after login with this config and an empty `imap_capability`.
#: `imap_capability = +X` can only add, so removing one means writing out the whole list, and
#: then Dovecot adds nothing of its own (not even LITERAL+, NOTIFY, SPECIAL-USE);
#: test_dovecot_fixture checks this list against what the installed Dovecot really sends.
DOVECOT_CAPABILITIES: tuple[str, ...] = (
    "IMAP4rev1", "SASL-IR", "LOGIN-REFERRALS", "ID", "ENABLE", "IDLE", "SORT", "SORT=DISPLAY",
    "THREAD=REFERENCES", "THREAD=REFS", "THREAD=ORDEREDSUBJECT", "MULTIAPPEND", "URL-PARTIAL",
    "CATENATE", "UNSELECT", "CHILDREN", "NAMESPACE", "UIDPLUS", "LIST-EXTENDED", "I18NLEVEL=1",
    "CONDSTORE", "QRESYNC", "ESEARCH", "ESORT", "SEARCHRES", "WITHIN", "CONTEXT=SEARCH",
    "LIST-STATUS", "BINARY", "MOVE", "SNIPPET=FUZZY", "PREVIEW=FUZZY", "PREVIEW", "STATUS=SIZE",
    "SAVEDATE", "LITERAL+", "NOTIFY", "SPECIAL-USE",
)  # fmt: skip

#: Special-use folders every user has (auto-created and auto-subscribed), name -> flag.
SPECIAL_FOLDERS: dict[str, str] = {
    "Drafts": "\\Drafts",
    "Sent": "\\Sent",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Archive": "\\Archive",
}

#: Owner of the mail files when the server is started as root (Debian's nobody/nogroup).
NOBODY_UID = 65534
NOBODY_GID = 65534

INSTALL_HINT = (
    "run `make test` or `scripts/ensure-test-deps` (Debian: apt-get install dovecot-imapd)"
)

# Dovecot's default auth_username_chars, lower case only because auth_username_format = %Lu.
_USERNAME_RE = re.compile(r"[a-z0-9_@-][a-z0-9._@-]{0,63}")
_MAILDIR_FLAGS = frozenset("DFPRST")
# Unix socket paths are limited to 108 bytes; Dovecot's longest is about 55 below the parent.
_MAX_PARENT_LEN = 50
_SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"
_MIN_SHM_BYTES = 2 << 30
_START_TIMEOUT = 10.0
_TERM_TIMEOUT = 2.0
_STOP_TIMEOUT = 10.0

_live_servers: weakref.WeakSet[DovecotServer] = weakref.WeakSet()


class DovecotError(RuntimeError):
    """Dovecot is missing, would not start, or would not stop."""


@dataclasses.dataclass(frozen=True)
class DovecotUser:
    """A mail user: LOGIN/PLAIN check `password`, XOAUTH2/OAUTHBEARER check `oauth_token`."""

    name: str
    password: str
    oauth_token: str


@dataclasses.dataclass(frozen=True)
class ImapAccount:
    """Everything a client needs to reach one user's mailbox on a test server."""

    host: str
    port: int
    user: str
    password: str
    oauth_token: str
    server: DovecotServer = dataclasses.field(repr=False, compare=False)


def find_program(name: str) -> str | None:
    """Path of a Dovecot/OpenSSL program, also looking in sbin dirs missing from a user's PATH."""
    path = os.environ.get("PATH", os.defpath) + os.pathsep + _SBIN_PATH
    return shutil.which(name, path=path)


def missing_programs() -> list[str]:
    """Which of the programs the servers need (`dovecot`, `doveadm`, `openssl`) are missing."""
    return [p for p in ("dovecot", "doveadm", "openssl") if find_program(p) is None]


def _require_program(name: str) -> str:
    found = find_program(name)
    if found is None:
        raise DovecotError(f"`{name}` is not installed: {INSTALL_HINT}")
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def default_tmp_parent() -> Path:
    """Where server dirs go: $TRIAGE_DOVECOT_TMPDIR, else /dev/shm if roomy, else the temp dir.

    Maildirs are one file per message, and on a VM disk creating small files is 10-20 times
    slower than on tmpfs (measured: 2-5k against 47k files/s).
    """
    if env := os.environ.get("TRIAGE_DOVECOT_TMPDIR"):
        return Path(env)
    shm = Path("/dev/shm")
    with contextlib.suppress(OSError):
        st = os.statvfs(shm)
        # Docker's default 64 MB /dev/shm would run out with a big seeded mailbox.
        if st.f_bavail * st.f_frsize >= _MIN_SHM_BYTES and os.access(shm, os.W_OK | os.X_OK):
            return shm
    return Path(tempfile.gettempdir())


def _traversable_by_others(path: Path) -> bool:
    """Whether every directory from / down to `path` can be entered by any user."""
    return all(os.stat(p).st_mode & 0o001 for p in (path, *path.parents))


def _group_alive(pgid: int, but: int | None = None) -> bool:
    """Whether any non-zombie process (other than pid `but`) is left in process group `pgid`."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: fall back to signal 0 (counts zombies, not `but`)
        if but is not None:
            return False
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == but:
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after "pid (comm)": state, ppid, pgrp, ...; comm may contain spaces.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


class DovecotServer:
    """One private Dovecot instance: IMAP on `HOST`:`port` (and implicit TLS on `imaps_port`).

    Keyword arguments choose the variant: `tls` serves a self-signed certificate for
    localhost/127.0.0.1 (`cert_file`, usable as a CA file) on `imaps_port` and via STARTTLS on
    `port`; `capabilities_without` and `idle=False` leave capabilities out of what is advertised
    (Dovecot still accepts the commands: clients must go by the advertisement); `quota` loads
    the quota plugin (no limit until `set_quota` gives a user's folder one).
    """

    def __init__(
        self,
        *,
        tls: bool = False,
        capabilities_without: Iterable[str] = (),
        idle: bool = True,
        default_user: str = "triage",
        default_password: str = "triage-password",
        tmp_parent: str | os.PathLike[str] | None = None,
        quota: bool = False,
    ) -> None:
        """Describe a server; nothing runs until `start()` (or `with`)."""
        removed = {c.upper() for c in capabilities_without} | (set() if idle else {"IDLE"})
        known = {c.upper() for c in DOVECOT_CAPABILITIES}
        if unknown := removed - known:
            raise ValueError(
                f"cannot remove capabilities {sorted(unknown)}: not advertised by Dovecot 2.3 "
                f"(it has {' '.join(DOVECOT_CAPABILITIES)})"
            )
        self.tls = tls
        self.quota = quota
        self.removed_capabilities: frozenset[str] = frozenset(removed)
        #: The explicit `imap_capability`, or None when Dovecot's default list is served.
        self.capabilities: tuple[str, ...] | None = (
            tuple(c for c in DOVECOT_CAPABILITIES if c.upper() not in removed) if removed else None
        )
        self.host = HOST
        self.port = 0
        self.imaps_port: int | None = None
        self.root: Path | None = None
        self.cert_file: Path | None = None
        self.key_file: Path | None = None
        self.users: dict[str, DovecotUser] = {}
        self._default_user = (default_user, default_password)
        self._tmp_parent = Path(tmp_parent) if tmp_parent is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._as_root = os.geteuid() == 0
        self._lock = threading.Lock()
        self._user_seq = itertools.count(1)
        self._file_seq = itertools.count(1)

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<DovecotServer {self.host}:{self.port} tls={self.tls} {state} root={self.root}>"

    @property
    def running(self) -> bool:
        """Whether the master process is up."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def user(self) -> DovecotUser:
        """The default user, created by the first `start()`."""
        return self.users[self._default_user[0]]

    @property
    def config_file(self) -> Path:
        """The generated dovecot.conf."""
        return self._path("dovecot.conf")

    @property
    def log_file(self) -> Path:
        """Dovecot's own log (log_path)."""
        return self._path("dovecot.log")

    def start(self) -> DovecotServer:
        """Create the temp dir, config, certificate and default user, and start Dovecot.

        Returns once the IMAP port(s) greet with `* OK`; raises `DovecotError` with the tail of
        the log if that takes more than 10 s or the master exits.
        """
        if self.running:
            return self
        if missing := missing_programs():
            raise DovecotError(f"{', '.join(missing)} not installed: {INSTALL_HINT}")
        _live_servers.add(self)
        try:
            if self.root is None:
                self._make_root()
                if self.tls:
                    self._make_certificate()
                self.add_user(*self._default_user)
            # A port found free by binding port 0 can be taken before Dovecot binds it: retry.
            for attempt in range(3):
                self.port = _free_port()
                self.imaps_port = _free_port() if self.tls else None
                self._write_config()
                try:
                    self._launch()
                    break
                except DovecotError:
                    if attempt == 2 or "Address already in use" not in self.log_tail():
                        raise
                    log.warning("dovecot: port %s taken meanwhile, trying another", self.port)
        except BaseException:
            self.stop()  # `with` does not call __exit__ when __enter__ fails
            raise
        return self

    def stop(self) -> None:
        """Stop Dovecot and delete the temp dir with all its mail; `start()` makes a new one."""
        try:
            self._terminate()
        finally:
            if self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
            self.users = {}
            _live_servers.discard(self)

    def restart(self) -> None:
        """Stop and start Dovecot again on the same ports, keeping users and mail.

        Open client connections are dropped, as when a real server restarts.
        """
        with self.stopped():
            pass

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """Keep the server down (connections refused) inside the block, then start it again."""
        if self.root is None:
            raise DovecotError("server was never started")
        self._terminate()
        try:
            yield
        finally:
            self._launch()

    def kick(self, user: DovecotUser | str) -> None:
        """Disconnect all of a user's IMAP sessions (`doveadm kick`), the server stays up."""
        self._doveadm("kick", self._user_name(user))

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of Dovecot's log and of the master's stderr, for error messages."""
        out = []
        for name in ("dovecot.log", "dovecot.stderr"):
            path = self._path(name)
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").splitlines()[-lines:]
                if text:
                    out.append(f"--- {path} ---\n" + "\n".join(text))
        return "\n".join(out) or "(no log yet)"

    # -- users -----------------------------------------------------------------------------

    def add_user(
        self, name: str | None = None, password: str | None = None, oauth_token: str | None = None
    ) -> DovecotUser:
        """Add a mail user; works while the server runs, the next login already sees it.

        Names default to `user<N>`, passwords and tokens to random strings. Names must be lower
        case (Dovecot lower-cases logins) from Dovecot's default username characters.
        """
        if self.root is None:
            raise DovecotError("start() the server before adding users")
        with self._lock:
            if name is None:
                name = f"user{next(self._user_seq)}"
                while name in self.users:
                    name = f"user{next(self._user_seq)}"
            if not _USERNAME_RE.fullmatch(name) or ".." in name:
                raise ValueError(f"bad user name {name!r}: use [a-z0-9._@-], not starting with '.'")
            if name in self.users:
                raise ValueError(f"user {name!r} exists already")
            password = password if password is not None else f"pw-{secrets.token_hex(8)}"
            oauth_token = oauth_token if oauth_token is not None else f"tok-{secrets.token_hex(12)}"
            for secret in (password, oauth_token):
                if not secret or any(c in secret for c in ":\r\n"):
                    raise ValueError(
                        "passwords and tokens must be non-empty, without ':' or newlines"
                    )
            # One passwd-file per user and mechanism: Dovecot re-reads a changed passwd-file at
            # most once a second, but opens a file it has not seen before at once.
            user = DovecotUser(name, password, oauth_token)
            self._write_passdb(user)
            self.users[name] = user
            return user

    def _write_passdb(self, user: DovecotUser, extra_fields: str = "") -> None:
        """The user's passwd-file lines (extra fields are passdb/userdb settings)."""
        suffix = f"::::::{extra_fields}" if extra_fields else ""
        for mech, secret in (("password", user.password), ("token", user.oauth_token)):
            line = f"{user.name}:{{PLAIN}}{secret}{suffix}\n"
            self._write_file(self._path("auth", mech, user.name), line)

    def set_quota(self, user: DovecotUser | str, *folders: str) -> None:
        """Make these folders of `user` full (on a server made with `quota=True`): Dovecot then
        answers COPY and APPEND into them with NO [OVERQUOTA]; no folders lifts it. Returns
        once a new login sees the change (sessions already logged in keep what they had).

        Dovecot never refuses a MOVE for quota within one quota root: moving cannot raise the
        usage (quota_move_requires_check in its quota plugin), so MOVE still goes through.
        """
        if not self.quota:
            raise DovecotError("set_quota needs a server made with quota=True")
        account = self.account(user)
        # A limit of 1 byte for each folder (rules for one mailbox are relative to the
        # user's): it is over quota from its first message. Extra fields are split at spaces,
        # so a name is a mask with "?" for anything but plain characters.
        rules = [
            f"userdb_quota_rule{n}={re.sub(r'[^A-Za-z0-9/_-]', '?', folder)}"
            f":storage=-{(1 << 30) - 1}B"
            for n, folder in enumerate(folders, start=2)
        ]
        extra = " ".join(["userdb_quota_rule=*:storage=1G", *rules]) if folders else ""
        self._write_passdb(self.users[account.user], extra)
        # Dovecot looks at a changed passwd-file at most once a second: wait for a login that
        # reports the user's limit (GETQUOTAROOT) as it should now be.
        deadline = time.monotonic() + _START_TIMEOUT
        while self._quota_limited(account) != bool(folders):
            if time.monotonic() > deadline:
                raise DovecotError(f"the quota of {account.user} did not change within 10 s")
            time.sleep(0.05)

    @staticmethod
    def _quota_limited(account: ImapAccount) -> bool:
        imap = imaplib.IMAP4(account.host, account.port, timeout=10)
        try:
            imap.login(account.user, account.password)
            imap._simple_command("GETQUOTAROOT", "INBOX")
            return bool(imap.untagged_responses.pop("QUOTA", None))
        finally:
            with contextlib.suppress(Exception):
                imap.logout()

    def new_account(self, prefix: str = "user") -> ImapAccount:
        """Add a fresh, uniquely named user and return how to reach it over plain IMAP."""
        prefix = re.sub(r"[^a-z0-9_-]+", "-", prefix.lower()).strip("-")[:40] or "user"
        name = f"{prefix}-{next(self._user_seq)}"
        while name in self.users:
            name = f"{prefix}-{next(self._user_seq)}"
        return self.account(self.add_user(name))

    def account(self, user: DovecotUser | str | None = None) -> ImapAccount:
        """An `ImapAccount` for an existing user (default: the default user)."""
        u = self.users[self._user_name(user)] if user is not None else self.user
        return ImapAccount(self.host, self.port, u.name, u.password, u.oauth_token, self)

    # -- mail on disk ----------------------------------------------------------------------

    def maildir_path(self, user: DovecotUser | str, folder: str = "INBOX") -> Path:
        """Where Dovecot keeps `folder` of `user` (Maildir++: INBOX is the root, `A/B` is `.A.B`).

        Names are IMAP names with `/` as separator and may be non-ASCII (stored as modified
        UTF-7, like Dovecot does). Dovecot refuses `.` in names with this layout, and so do we.
        """
        root = self._path("mail", self._user_name(user))
        if folder.upper() == "INBOX":
            return root
        parts = folder.split("/")
        if any(not p or "." in p for p in parts):
            raise ValueError(f"bad folder name {folder!r}: empty part or '.' (Maildir++ layout)")
        return root / ("." + ".".join(imap_utf7.encode(p).decode("ascii") for p in parts))

    def seed(
        self,
        user: DovecotUser | str,
        folder: str,
        messages: Iterable[bytes],
        flags: str = "",
    ) -> list[Path]:
        """Write messages straight into a folder's Maildir, creating and subscribing it if needed.

        Without `flags` they land in `new/` (unseen, \\Recent); with Maildir flag letters
        (`S` seen, `F` flagged, `R` answered, `D` draft, `T` deleted) in `cur/`. Dovecot gives
        them UIDs in the given order at its next sync. Far faster than APPEND (about 270/s):
        use it for big mailboxes. Returns the files written.
        """
        bad = set(flags) - _MAILDIR_FLAGS
        if bad:
            raise ValueError(f"unknown Maildir flags {sorted(bad)}: use letters from DFPRST")
        name = self._user_name(user)
        mdir = self._ensure_folder(name, folder)
        tmp_dir = os.fspath(mdir / "tmp")
        dest_dir = os.fspath(mdir / ("cur" if flags else "new"))
        info = ":2," + "".join(sorted(set(flags))) if flags else ""
        owner = (NOBODY_UID, NOBODY_GID) if self._as_root else None
        now, pid = int(time.time()), os.getpid()
        written = []
        for msg in messages:
            size = len(msg)
            # W= is the size with CRLF line ends (RFC822.SIZE), so Dovecot need not read the file.
            vsize = size + msg.count(b"\n") - msg.count(b"\r\n")
            # Dovecot sorts new files by the seconds and the M field, so a counter keeps the order.
            base = f"{now}.M{next(self._file_seq)}P{pid}.triage-seed,S={size},W={vsize}"
            tmp_path = os.path.join(tmp_dir, base)
            fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(msg)
                while view:
                    view = view[os.write(fd, view) :]
                if owner:
                    os.fchown(fd, *owner)
            finally:
                os.close(fd)
            # Written in tmp/ and renamed, so a running Dovecot never sees half a message.
            final = os.path.join(dest_dir, base + info)
            os.rename(tmp_path, final)
            written.append(Path(final))
        log.debug("seeded %d messages into %s/%s", len(written), name, folder)
        return written

    # -- internals -------------------------------------------------------------------------

    def _path(self, *parts: str) -> Path:
        if self.root is None:
            raise DovecotError("server has no directory: start() it first")
        return self.root.joinpath(*parts)

    @staticmethod
    def _user_name(user: DovecotUser | str) -> str:
        return user.name if isinstance(user, DovecotUser) else user

    def _chown(self, path: Path) -> None:
        if self._as_root:
            os.chown(path, NOBODY_UID, NOBODY_GID)

    def _write_file(self, path: Path, text: str, mode: int = 0o644) -> None:
        """Write a file atomically (temp + rename): Dovecot may read it at any moment."""
        tmp = path.with_name(f".tmp-{path.name}")
        tmp.write_text(text)
        tmp.chmod(mode)
        tmp.replace(path)

    def _make_root(self) -> None:
        parent = self._tmp_parent or default_tmp_parent()
        # As root, Dovecot's auth (user dovecot) and mail processes (nobody) must reach the dir.
        if self._as_root and not _traversable_by_others(parent.resolve()):
            log.warning("dovecot: %s is not traversable by other users, using /tmp", parent)
            parent = Path("/tmp")
        if len(str(parent)) > _MAX_PARENT_LEN:
            log.warning("dovecot: %s is too long for Unix socket paths, using /tmp", parent)
            parent = Path("/tmp")
        root = Path(tempfile.mkdtemp(prefix="triage-dovecot-", dir=parent))
        root.chmod(0o755)
        self.root = root
        for sub in ("run", "state", "auth", "auth/password", "auth/token", "mail"):
            (root / sub).mkdir(mode=0o755)
        # The passdb file path is chosen by %{mech}: passwords for LOGIN/PLAIN, tokens for OAuth.
        for mech, target in (
            ("PLAIN", "password"),
            ("LOGIN", "password"),
            ("XOAUTH2", "token"),
            ("OAUTHBEARER", "token"),
        ):
            (root / "auth" / mech).symlink_to(target)
        self._chown(root / "mail")
        log.info("dovecot: directory %s", root)

    def _make_certificate(self) -> None:
        """A self-signed certificate for localhost and 127.0.0.1 that also serves as its CA."""
        conf = self._path("openssl.cnf")
        conf.write_text(
            "[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n"
            "[dn]\nCN = localhost\n"
            "[ext]\nsubjectAltName = DNS:localhost,IP:127.0.0.1\n"
            "basicConstraints = critical,CA:TRUE\n"
            "keyUsage = critical,digitalSignature,keyEncipherment,keyCertSign\n"
            "extendedKeyUsage = serverAuth\n"
            "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n"
        )
        self.cert_file, self.key_file = self._path("cert.pem"), self._path("key.pem")
        cmd = [
            _require_program("openssl"),
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-sha256",
            "-config", str(conf), "-keyout", str(self.key_file), "-out", str(self.cert_file),
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise DovecotError(f"openssl could not make a certificate: {result.stderr.strip()}")

    def _write_config(self) -> None:
        root = self._path()
        if self._as_root:
            # Dovecot refuses to run login processes as root: leave it its packaged users
            # (dovecot, dovenull) and chroots, and give the mail to nobody.
            identity = "first_valid_uid = 1\n"
            uid, gid = NOBODY_UID, NOBODY_GID
            login_extra = anvil = ""
        else:
            try:
                pw = pwd.getpwuid(os.geteuid())
                group = grp.getgrgid(os.getegid()).gr_name
            except KeyError:
                raise DovecotError(
                    f"uid {os.geteuid()} / gid {os.getegid()} has no name in /etc/passwd or "
                    "/etc/group: Dovecot needs named users to run as"
                ) from None
            uid, gid = pw.pw_uid, pw.pw_gid
            identity = (
                f"default_internal_user = {pw.pw_name}\ndefault_internal_group = {group}\n"
                f"default_login_user = {pw.pw_name}\n"
                f"first_valid_uid = {uid}\nlast_valid_uid = {uid}\n"
                f"first_valid_gid = {gid}\nlast_valid_gid = {gid}\n"
            )
            # chroot needs root.
            login_extra = "  chroot =\n"
            anvil = "  chroot =\n"
        if self.tls:
            ssl_conf = (
                f"ssl = yes\nssl_cert = <{self.cert_file}\nssl_key = <{self.key_file}\n"
                "ssl_min_protocol = TLSv1.2\n"
            )
        else:
            ssl_conf = "ssl = no\n"
        capability = (
            f"imap_capability = {' '.join(self.capabilities)}\n" if self.capabilities else ""
        )
        quota = (
            "mail_plugins = $mail_plugins quota\n"
            "protocol imap {\n  mail_plugins = $mail_plugins imap_quota\n}\n"
            # The count backend keeps usage in the index; no limit unless a user's passdb
            # entry sets quota rules (set_quota).
            "plugin {\n  quota = count:User quota\n  quota_vsizes = yes\n}\n"
            if self.quota
            else ""
        )
        mailboxes = "".join(
            f"  mailbox {name} {{\n    special_use = {flag}\n    auto = subscribe\n  }}\n"
            for name, flag in SPECIAL_FOLDERS.items()
        )
        config = f"""\
# Generated by tests/dovecot.py for one test server; see DESIGN.md section 4.
protocols = imap
listen = {HOST}
base_dir = {root}/run
state_dir = {root}/state
instance_name = triage-{root.name}
log_path = {root}/dovecot.log
verbose_proctitle = yes
{identity}{ssl_conf}disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
auth_verbose = yes
# Tests fail logins on purpose: no 2 s delay per failure.
auth_failure_delay = 0
# The default 10 would fail tests that open many connections as one user.
mail_max_userip_connections = 1000
mail_location = maildir:{root}/mail/%u
mail_fsync = never
{capability}{quota}
namespace inbox {{
  inbox = yes
  separator = /
{mailboxes}}}

# XOAUTH2/OAUTHBEARER check the token like a password against the passdb; %{{mech}} picks
# auth/XOAUTH2 -> auth/token, auth/PLAIN -> auth/password (2.3 has no per-passdb mechanisms).
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/auth/%{{mech}}/%u
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u allow_all_users=yes
}}

service imap-login {{
{login_extra}  inet_listener imap {{
    address = {HOST}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {self.imaps_port or 0}
  }}
}}
# No per-IP auth penalty either (after a failed login, 2-15 s before *every* login from
# 127.0.0.1, even with login_trusted_networks in 2.3): auth turns it off if it cannot open
# this socket.
service anvil {{
{anvil}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""
        self.config_file.write_text(config)

    def _launch(self) -> None:
        """Start the master and wait for the greeting(s)."""
        dovecot = _require_program("dovecot")
        stderr = self._path("dovecot.stderr").open("ab")
        # -F keeps the master in the foreground as our child, so an early exit is seen at once
        # and it is reaped; its own session keeps it (and its children) out of our Ctrl-C.
        with stderr:
            self._proc = subprocess.Popen(
                [dovecot, "-F", "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )
        log.info("dovecot: pid %s on %s:%s", self._proc.pid, self.host, self.port)
        deadline = time.monotonic() + _START_TIMEOUT
        ports = [(self.port, False)] + ([(self.imaps_port, True)] if self.imaps_port else [])
        for port, implicit_tls in ports:
            while not self._greets(port, implicit_tls):
                if self._proc.poll() is not None:
                    self._proc = None
                    raise DovecotError(
                        f"dovecot exited during start-up (config {self.config_file}):\n"
                        + self.log_tail()
                    )
                if time.monotonic() > deadline:
                    self._terminate()
                    raise DovecotError(
                        f"dovecot did not greet on {self.host}:{port} within {_START_TIMEOUT:.0f}"
                        f" s (config {self.config_file}):\n" + self.log_tail()
                    )
                time.sleep(0.02)

    def _greets(self, port: int, implicit_tls: bool) -> bool:
        try:
            with socket.create_connection((self.host, port), timeout=2) as sock:
                if implicit_tls:
                    ctx = ssl.create_default_context()
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                    with ctx.wrap_socket(sock) as tls_sock:
                        return tls_sock.recv(64).startswith(b"* OK")
                return sock.recv(64).startswith(b"* OK")
        except OSError:
            return False

    def _terminate(self) -> None:
        """Stop the master and its children, and wait until all of them are gone.

        Not `doveadm stop`: that signals only the master, which exits after 1 s and leaves
        imap processes with open connections running for another 10 s.
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # The master leads its own process group (start_new_session), so this hits only Dovecot;
        # every process says BYE to its clients and exits within some 20 ms. A process the
        # master forks just then misses the signal (and waits 5 s on its dead config socket),
        # so repeat it.
        deadline = time.monotonic() + _TERM_TIMEOUT
        while True:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            if self._wait(lambda: not _group_alive(proc.pid, but=proc.pid), timeout=0.1):
                break
            if time.monotonic() > deadline:
                log.warning("dovecot: pid %s ignored SIGTERM:\n%s", proc.pid, self.log_tail())
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                break
        # The master then notices its dead children only by polling, 0.1-1 s (once 6 s) later;
        # all it has left to do is remove its pid file, so a restart need not wait for it.
        if not self._wait(lambda: proc.poll() is not None, timeout=0.05):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        if not self._wait(lambda: proc.poll() is not None and not _group_alive(proc.pid)):
            raise DovecotError(f"dovecot (pid {proc.pid}) survived SIGKILL")
        log.info("dovecot: pid %s stopped", proc.pid)

    @staticmethod
    def _wait(done: Callable[[], bool], timeout: float = _STOP_TIMEOUT) -> bool:
        """Poll `done` until it is true (True) or `timeout` seconds have passed (False)."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)
        return True

    def _doveadm(self, *args: str) -> str:
        cmd = [_require_program("doveadm"), "-c", str(self.config_file), *args]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise DovecotError(f"{' '.join(cmd)} failed: {result.stderr.strip()}")
        return result.stdout

    def _mkdirs(self, path: Path) -> None:
        """Make `path` and missing parents below the mail root, owned by the mail user."""
        missing = []
        while not path.exists():
            missing.append(path)
            path = path.parent
        for p in reversed(missing):
            with contextlib.suppress(FileExistsError):
                p.mkdir(mode=0o700)
                self._chown(p)

    def _ensure_folder(self, user: str, folder: str) -> Path:
        mdir = self.maildir_path(user, folder)
        if (mdir / "tmp").is_dir():
            return mdir
        if folder.upper() != "INBOX" and folder not in SPECIAL_FOLDERS and self.running:
            # A logged-in session's LIST only learns of new folders through Dovecot's list
            # index, which a mkdir behind its back does not update: let Dovecot create it.
            self._doveadm("mailbox", "create", "-s", "-u", user, folder)
            if (mdir / "tmp").is_dir():
                return mdir
        for sub in ("cur", "new", "tmp"):
            self._mkdirs(mdir / sub)
        if folder.upper() != "INBOX":
            marker = mdir / "maildirfolder"  # Maildir++: marks a folder (not a root) for Dovecot
            marker.touch()
            self._chown(marker)
            if folder not in SPECIAL_FOLDERS:  # those are subscribed by `auto = subscribe`
                self._subscribe(user, folder)
        return mdir

    def _subscribe(self, user: str, folder: str) -> None:
        """Add `folder` to the user's subscriptions file, holding Dovecot's dotlock."""
        root = self.maildir_path(user)
        path, lock = root / "subscriptions", root / "subscriptions.lock"
        # Dovecot 2.3's format: a "V\t2" header, then one mUTF-7 name a line, levels split by tab.
        entry = "\t".join(imap_utf7.encode(p).decode("ascii") for p in folder.split("/"))
        deadline = time.monotonic() + 10
        while True:
            try:
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                break
            except FileExistsError:
                if time.monotonic() > deadline:
                    raise DovecotError(f"{lock} stays locked") from None
                time.sleep(0.01)
        try:
            try:
                lines = path.read_text().splitlines()
            except FileNotFoundError:
                lines = []
            if not lines or lines[0] != "V\t2":
                lines = ["V\t2", "", *[line.replace("/", "\t") for line in lines if line]]
            if entry not in lines[2:]:
                lines.append(entry)
            os.write(fd, ("\n".join(lines) + "\n").encode())
            if self._as_root:
                os.fchown(fd, NOBODY_UID, NOBODY_GID)
        finally:
            os.close(fd)
        # Dovecot replaces the file by renaming its lock file over it; so do we.
        os.rename(lock, path)


@atexit.register
def _stop_leftover_servers() -> None:
    """Stop servers a caller forgot (or a crash skipped), so no dovecot outlives the tests."""
    for server in list(_live_servers):
        with contextlib.suppress(Exception):
            server.stop()

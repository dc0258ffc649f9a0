"""Randomized fault trials of `triage run` against a real Dovecot; the machinery behind
`benchmarks/faults` and tests/imap/test_fault_trials.py (and the fork server test_faults uses).

A `FaultLab` is one account on a private Dovecot (quota plugin loaded, with or without MOVE)
holding a few thousand messages: the sample buyer's filed folders, mail that was in the inbox
before triage's first run, and new mail delivered trial by trial. triage reaches the server
through a `TcpProxy`; the lab's census and the buyer's own actions go straight to Dovecot.
Every `triage run` is forked from a process that has imported everything (`Runs`), so a random
moment lands in real work rather than in two seconds of imports.

Each trial delivers new mail, injects one kind of fault (`KINDS`) into a `triage run --once`
or a long-running `triage run`, lets the next, unfaulted `triage run --once` settle things, and
checks the invariants (`FaultLab.check`):

* every message exists exactly once (none lost, none duplicated, none from nowhere); only mail
  in a folder the buyer deleted may be gone;
* no message's \\Seen flag changed (triage never marks mail read), none is left \\Deleted;
* the store agrees with the server: no unfinished intent; each message is where its last
  filing says (done: the destination; failed, interrupted or never filed: where it was
  delivered), unless the buyer moved it with a folder; "vanished" only for such mail; every
  new message was read (has a decision); a folder whose UIDVALIDITY was reset has the new one;
  each weekly digest recorded as delivered is in the mailbox, once, and a refused one is not
  recorded;
* no triage process crashed (a traceback, or an exit code other than the fault explains), and
  a long-running `triage run` went on filing through the fault.

Plain module (no pytest), like dovecot.py and tcpproxy.py, so the benchmark can import it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import imaplib
import itertools
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import ClassVar

import imapclient
from dovecot import DovecotServer, ImapAccount
from imapclient import imap_utf7
from tcpproxy import Direction, TcpProxy

from triage import engine, sample
from triage.config import Config, load_config
from triage.digest import week_key
from triage.mailbox.base import message_id_from_header
from triage.store import DONE, INTENT, VANISHED, Store

INBOX = "INBOX"
SEEN = b"\\Seen"
DELETED = b"\\Deleted"
PASSWORD_ENV = "TRIAGE_FAULTS_PASSWORD"
ACCOUNT = "work"
PARTNER_PREFIX = "Vendors/"
#: What Dovecot answers a COPY or APPEND into a full folder; the proxy says it to a MOVE.
OVERQUOTA = b"NO [OVERQUOTA] Quota exceeded (mailbox for user is full)"

# The kinds of fault, in the order the summary lists them.
KILL = "kill -9 of triage run"
RESET = "proxy resets the connection"
STALL = "proxy stalls the connection"
RESTART_BATCH = "Dovecot restarted mid-batch"
RESTART_IDLE = "Dovecot restarted during IDLE"
FOLDER_DELETED = "buyer deletes a folder"
FOLDER_RENAMED = "buyer renames a folder"
UIDVALIDITY = "UIDVALIDITY reset (partner folder, inbox)"
QUOTA = "NO to MOVE/COPY/APPEND (quota)"
KINDS = (
    KILL,
    RESET,
    STALL,
    RESTART_BATCH,
    RESTART_IDLE,
    FOLDER_DELETED,
    FOLDER_RENAMED,
    UIDVALIDITY,
    QUOTA,
)

#: A `triage digest` that kills itself once the digest is in the mailbox, not yet recorded.
APPENDED = "triage.mailbox.imap:ImapMailbox.append:after:1"
# Exit codes: 3 is triage's "mailbox problem" (the connection was lost and --once gave up).
EXIT_OK, EXIT_MAILBOX, KILLED = 0, 3, -signal.SIGKILL
#: Longest wait for a long-running `triage run` to read new mail after a fault: it reconnects
#: within seconds (backoff 1 s, 2 s, ...); far more means it stopped working.
CATCH_UP = 45.0
#: Longest a `triage run --once` may take (a stalled command waits out its 120 s read timeout).
RUN_TIMEOUT = 180.0

# -- forked runs --------------------------------------------------------------------------------

# The runs are forked from this process, which imports everything once; each child runs the
# real command line, and this server alone kills and reaps it (so it can never hit a reused
# pid). Protocol on stdin, one JSON object a line: {"run": {"spec", "log", "argv"}} then, maybe,
# {"signal": N}; it answers "exit CODE" (negative: killed by that signal). A spec
# "module:Class.method:when:N" makes the child SIGKILL itself before or after the N-th call of
# that method.
FORK_SERVER = r"""
import importlib, json, os, select, signal, sys, traceback
import imapclient, triage.cli, triage.engine, triage.store, triage.mailbox.imap

BASE = sys.argv[1:]

def arm(spec):
    module, attribute, when, nth = spec.split(":")
    owner_name, method = attribute.split(".")
    owner = getattr(importlib.import_module(module), owner_name)
    original, calls = getattr(owner, method), [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == int(nth) and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        if calls[0] == int(nth) and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, method, wrapper)

def child(fd, spec, argv):
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    code = 70
    try:
        if spec:
            arm(spec)
        sys.argv = ["triage", *BASE, *argv]
        triage.cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except BaseException:
        traceback.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

pending = b""
def command():
    global pending
    while b"\n" not in pending:
        data = os.read(0, 4096)
        if not data:
            raise EOFError
        pending += data
    line, pending = pending.split(b"\n", 1)
    return json.loads(line)

def serve():
    print("ready", flush=True)
    while True:
        request = command()
        if "signal" in request:  # for a child that had already finished
            continue
        run = request["run"]
        # Opened before the fork: a child killed at once still leaves its (empty) log.
        fd = os.open(run["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        pid = os.fork()
        if pid == 0:
            child(fd, run["spec"], run["argv"])
        os.close(fd)
        exited = os.pidfd_open(pid)
        try:
            while True:
                wait = 0 if b"\n" in pending else None
                readable, _, _ = select.select([exited, 0], [], [], wait)
                if exited in readable:
                    break
                os.kill(pid, int(command()["signal"]))  # not reaped yet: still this child's
        except EOFError:  # the caller is gone: so is its run
            os.kill(pid, signal.SIGKILL)
            raise
        finally:
            os.close(exited)
            _, status = os.waitpid(pid, 0)
        print(f"exit {os.waitstatus_to_exitcode(status)}", flush=True)

try:
    serve()
except EOFError:
    pass
"""


@dataclasses.dataclass(frozen=True)
class Finished:
    """How a forked run ended: its exit code (-9 when killed), its log, when it started."""

    code: int
    log: str
    started: float
    log_path: Path


class Runs:
    """Starts `triage -v --config CFG ARGS...` processes forked from a ready fork server, one
    at a time: `run` for a whole run, or `start`, `signal`, `poll` / `wait` to act meanwhile."""

    def __init__(
        self, config_path: Path, logs: Path, *, env: Mapping[str, str] | None = None
    ) -> None:
        self.logs = logs
        self.count = 0
        # One BLAS thread: forking a process whose pools have threads is asking for trouble.
        env = {**(env if env is not None else os.environ)}
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        self.server = subprocess.Popen(
            [sys.executable, "-c", FORK_SERVER, "-v", "--config", str(config_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self.pending = b""  # read straight from the pipe: select() knows nothing of buffers
        self.current: tuple[Path, float] | None = None  # the log and start of the run under way
        assert self._line(60) == "ready", "the fork server did not start"

    def _line(self, timeout: float) -> str | None:
        """The server's next line, or None if none came within `timeout` seconds."""
        assert self.server.stdout is not None
        fd = self.server.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            data = os.read(fd, 4096)
            assert data, f"the fork server died (exit {self.server.poll()})"
            self.pending += data
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode().strip()

    def _say(self, request: dict[str, object]) -> None:
        assert self.server.stdin is not None
        self.server.stdin.write(json.dumps(request).encode() + b"\n")
        self.server.stdin.flush()

    @property
    def busy(self) -> bool:
        return self.current is not None

    def start(self, *args: str, kill_at: str = "") -> Path:
        """Start `triage ARGS` (default `run --once`); returns its log file."""
        assert self.current is None, "a run is already under way"
        self.count += 1
        log = self.logs / f"run-{self.count}.log"
        self.current = (log, time.time())
        self._say(
            {"run": {"spec": kill_at, "log": str(log), "argv": list(args or ("run", "--once"))}}
        )
        return log

    def send_signal(self, signum: int) -> None:
        """Send `signum` to the run under way (ignored if it has just ended)."""
        self._say({"signal": int(signum)})

    def poll(self, timeout: float = 0.0) -> Finished | None:
        """The run's end, if it comes within `timeout` seconds."""
        assert self.current is not None, "no run under way"
        line = self._line(timeout)
        if line is None:
            return None
        log, started = self.current
        self.current = None
        return Finished(
            int(line.removeprefix("exit ")), log.read_text(errors="replace"), started, log
        )

    def wait(self, timeout: float = RUN_TIMEOUT) -> Finished | None:
        return self.poll(timeout)

    def run(
        self,
        *,
        args: Sequence[str] = ("run", "--once"),
        signal_after: float | None = None,
        signum: int = signal.SIGKILL,
        kill_at: str = "",
        signal_on: str = "",
    ) -> tuple[int, str, float]:
        """One run, sent `signum` after `signal_after` s (or as soon as its log shows
        `signal_on`), or killed by itself at `kill_at`, or left to finish: its exit code (-9
        when killed), its log, and when it started. A run that hangs fails the caller."""
        log = self.start(*args, kill_at=kill_at)
        if signal_on:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (
                log.exists() and signal_on in log.read_text(errors="replace")
            ):
                time.sleep(0.002)
            self.send_signal(signum)
        elif signal_after is not None:
            time.sleep(signal_after)
            self.send_signal(signum)
        finished = self.wait(60)
        assert finished is not None, "no answer from the fork server within 60 s"
        return finished.code, finished.log, finished.started

    def close(self) -> None:
        if self.server.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.server.stdin.close()
        try:
            self.server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()


# -- census -------------------------------------------------------------------------------------

_LISTED = re.compile(rb'^\((?P<flags>[^)]*)\) (?:"[^"]*"|NIL) (?P<name>.+)$')
_FLAGS = re.compile(rb"FLAGS \((?P<flags>[^)]*)\)")


def quick_census(
    account: ImapAccount, uidvalidity: dict[str, int] | None = None
) -> dict[str, list[tuple[str, frozenset[bytes]]]]:
    """Every message of the account, read with imaplib and two regexes: folder -> [(Message-ID,
    flags)] (what helpers.census returns; imapclient's response parser would make hundreds of
    censuses take minutes). Fills `uidvalidity` (folder -> UIDVALIDITY) when given."""
    for _attempt in range(5):
        found = _quick_census(account, uidvalidity)
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError("the census never read a folder whole")


def _quick_census(
    account: ImapAccount, uidvalidity: dict[str, int] | None
) -> dict[str, list[tuple[str, frozenset[bytes]]]] | None:
    """None when a folder changed while it was read (a run moving mail meanwhile)."""
    imap = imaplib.IMAP4(account.host, account.port)
    found: dict[str, list[tuple[str, frozenset[bytes]]]] = {}
    try:
        imap.login(account.user, account.password)
        _typ, listing = imap.list()
        for line in listing:
            assert isinstance(line, bytes)
            listed = _LISTED.match(line)
            assert listed, line
            if b"\\noselect" in listed["flags"].lower():
                continue
            raw = listed["name"]
            name = imap_utf7.decode(raw.strip(b'"'))
            typ, selected = imap.select(raw.decode("ascii"), readonly=True)
            assert typ == "OK", (name, selected)
            if uidvalidity is not None:
                _typ, values = imap.response("UIDVALIDITY")
                uidvalidity[name] = int(values[-1] or 0) if values else 0
            exists = int(selected[0] or 0)
            items: list[tuple[str, frozenset[bytes]]] = []
            if exists:
                typ, data = imap.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
                for part in data if typ == "OK" else ():
                    if isinstance(part, tuple):
                        flags = _FLAGS.search(part[0])
                        assert flags, part
                        message_id = part[1].decode().split(":", 1)[1].strip()
                        items.append(
                            (message_id, frozenset(flags["flags"].split()) - {b"\\Recent"})
                        )
            if len(items) != exists:
                return None
            found[name] = items
    finally:
        with contextlib.suppress(Exception):
            imap.logout()
    return found


# -- the summary --------------------------------------------------------------------------------


@dataclasses.dataclass
class Section:
    """One part of a benchmark's final summary: a title, (what, figure) rows, and how many
    failures it found (must be 0). benchmarks/faults prints its sections in order."""

    title: str
    rows: list[tuple[str, str]]
    failures: int


def render_sections(sections: Iterable[Section]) -> str:
    """The sections as one aligned table."""
    sections = list(sections)
    width = max((len(what) for s in sections for what, _ in s.rows), default=10)
    lines = []
    for section in sections:
        lines.append(section.title)
        lines.append("-" * max(len(section.title), width + 14))
        lines.extend(f"  {what:<{width}}  {figure:>10}" for what, figure in section.rows)
        lines.append("")
    return "\n".join(lines).rstrip()


@dataclasses.dataclass
class Trial:
    """One trial: what was injected, and what the checks found."""

    number: int
    kind: str
    server: str  # "MOVE" or "no MOVE"
    detail: str = ""
    injected: bool = False  # the fault took effect (a cut fired before the run ended, ...)
    violations: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    after: list[Callable[[], None]] = dataclasses.field(default_factory=list, repr=False)

    def line(self) -> str:
        verdict = "ok" if not self.violations else f"{len(self.violations)} VIOLATIONS"
        return (
            f"trial {self.number:3d} [{self.server:7s}] {self.kind}: {self.detail} "
            f"({self.seconds:.1f} s) {verdict}"
        )


@dataclasses.dataclass
class Tally:
    """Trials by kind and server, for the summary table."""

    trials: list[Trial] = dataclasses.field(default_factory=list)

    def add(self, trial: Trial) -> None:
        self.trials.append(trial)

    @property
    def violations(self) -> list[str]:
        return [f"trial {t.number} ({t.kind}): {v}" for t in self.trials for v in t.violations]

    def section(self, title: str = "fault trials") -> Section:
        servers = sorted({t.server for t in self.trials})
        rows: list[tuple[str, str]] = [("trials run", str(len(self.trials)))]
        for server in servers:
            on = sum(t.server == server for t in self.trials)
            rows.append((f"  on Dovecot {'with' if server == 'MOVE' else 'without'} MOVE", str(on)))
        rows.append(("faults injected by kind (took effect / trials)", ""))
        for kind in KINDS:
            of_kind = [t for t in self.trials if t.kind == kind]
            if of_kind:
                injected = sum(t.injected for t in of_kind)
                rows.append((f"  {kind}", f"{injected} / {len(of_kind)}"))
        rows.append(("invariant violations", str(len(self.violations))))
        return Section(title, rows, len(self.violations))


# -- the lab ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Entry:
    """A message the lab put on the server."""

    home: str  # the folder it was delivered to
    seen: bool  # delivered with \Seen; triage must never change that
    fresh: bool  # new mail triage must read (not the filed history or the first run's inbox)


_labs = itertools.count(1)
_MESSAGE_ID_LINE = re.compile(rb"^Message-ID: <", re.M | re.I)


class FaultLab:
    """One account on a private Dovecot, triage trained on it, and the fault trials.

    Use as a context manager: `with FaultLab(workdir, buyer) as lab: lab.trial(kind, rng)`.
    """

    def __init__(
        self,
        workdir: Path,
        buyer: sample.SampleMailbox,
        *,
        messages: int = 3000,
        move: bool = True,
        batch_size: int = 25,
        deliveries: tuple[int, int] = (40, 120),
        model_from: Path | None = None,
        out: Callable[[str], None] = print,
    ) -> None:
        self.workdir = workdir
        self.buyer = buyer
        self.messages = messages
        self.move = move
        self.server_name = "MOVE" if move else "no MOVE"
        self.batch_size = batch_size
        self.deliveries = deliveries
        self.model_from = model_from
        self.out = out
        self.server = DovecotServer(quota=True, capabilities_without=() if move else ("MOVE",))
        self.proxy: TcpProxy | None = None
        self.runs: Runs | None = None
        self.account: ImapAccount | None = None
        self.config: Config | None = None
        self.expected: dict[str, Entry] = {}
        # Folders the buyer made by renaming: what is in them, the buyer moved.
        self.buyer_folders: set[str] = set()
        self.pool = [m.data for m in (*buyer.new_week, *buyer.history)]
        self.serial = 0
        self.trials = 0
        self.seconds_per_message = 0.01
        self.startup_seconds = 0.5
        self.bytes_per_message = {"down": 3000.0, "up": 60.0}
        # Each lab its own variable: two labs (two servers, two passwords) may be open at once.
        self.password_env = f"{PASSWORD_ENV}_{next(_labs)}"
        self._reported: set[str] = set()
        self.digests = 0  # digests of past weeks delivered by the trials
        self.digest_seconds = 1.0  # how long a `triage digest` takes (calibrated)

    # -- set-up ---------------------------------------------------------------------------

    def __enter__(self) -> FaultLab:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.server.start()
        self.proxy = TcpProxy(self.server.port).start()
        self.account = self.server.new_account("faults")
        os.environ[self.password_env] = self.account.password
        # The buyer's filed (read) mail, then the inbox as it was before triage's first run.
        by_folder: dict[str, list[bytes]] = defaultdict(list)
        for message in self.buyer.history:
            by_folder[message.folder].append(message.data)
        for folder, datas in by_folder.items():
            self.server.seed(self.account.user, folder, datas, flags="S")
            for data in datas:
                self.expected[message_id_from_header(data)] = Entry(folder, True, False)
        rng = random.Random(len(self.pool))
        filler = max(0, self.messages - len(self.buyer.history))
        self._seed_inbox(rng, filler, seen_share=0.5, fresh=False, prefix="base")
        self.config = load_config(self._write_config())
        account = self.config.account()
        target = engine.model_dir(self.config, account)
        if self.model_from is not None and (self.model_from / "current").exists():
            shutil.copytree(self.model_from, target, dirs_exist_ok=True)
        else:
            engine.train(self.config, account)
        # The first run leaves the inbox alone and sets the sync marks.
        first = engine.run_once(self.config, account)
        assert first.read == 0, first
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        self.runs = Runs(self.config_path, logs, env={**os.environ})
        self._calibrate(rng)
        violations = self.check()
        assert not violations, f"the lab is not sound before any fault: {violations[:5]}"
        self.out(
            f"lab ({self.server_name} server): {len(self.expected):,} messages "
            f"({len(self.buyer.history):,} filed, {filler:,} in the inbox before the first run), "
            f"batch_size {self.batch_size}; a run of 100 new messages takes "
            f"{self.span(100):.2f} s; set up in {time.monotonic() - started:.1f} s"
        )

    @property
    def config_path(self) -> Path:
        return self.workdir / "config.toml"

    @property
    def db(self) -> Path:
        assert self.config is not None
        return engine.state_paths(self.config)[0]

    @property
    def model_dir(self) -> Path:
        assert self.config is not None
        return engine.model_dir(self.config, self.config.account())

    def _write_config(self) -> Path:
        assert self.account is not None and self.proxy is not None
        buyer = self.buyer.buyer
        self.config_path.write_text(
            f'[triage]\nstate_dir = "{self.workdir / "state"}"\n'
            # Small batches: a run has many batch boundaries for faults to fall between.
            # connect_timeout bounds the wait for a server that stopped answering IDLE.
            # No retrain: the trials are about filing, and a retrain would only slow them.
            f"[run]\nbatch_size = {self.batch_size}\nmove_batch = 1\nconnect_timeout = 5\n"
            "retrain_after = 1000000\n"
            "[[accounts]]\n"
            f'name = "{ACCOUNT}"\nbackend = "imap"\n'
            f'host = "{self.account.host}"\nport = {self.proxy.port}\n'
            f'user = "{self.account.user}"\nsecurity = "plain"\n'
            f'password_env = "{self.password_env}"\n'
            f'own_domains = ["{buyer.domain}"]\n'
            f'own_addresses = ["{buyer.address}"]\n'
        )
        return self.config_path

    def _calibrate(self, rng: random.Random) -> None:
        """Time and bytes of an unfaulted run: where kills, cuts and stalls aim."""
        assert self.runs is not None and self.proxy is not None
        walls = []
        for count in (20, 60):
            self.deliver(rng, count)
            down, up = self.proxy.bytes_down, self.proxy.bytes_up
            code, log, started = self.runs.run()
            assert code == 0 and "Traceback" not in log, f"calibration run failed ({code})"
            walls.append(time.time() - started)
        started = time.time()
        self.digests += 1
        until = (date.today() - timedelta(weeks=self.digests)).isoformat()
        calibration = Trial(0, "calibration", self.server_name)
        self.digest(calibration, until, delivered=True)
        assert not calibration.violations, calibration.violations
        self.digest_seconds = time.time() - started
        self.seconds_per_message = max(0.001, (walls[1] - walls[0]) / 40)
        self.startup_seconds = max(0.05, walls[0] - 20 * self.seconds_per_message)
        self.bytes_per_message = {
            "down": (self.proxy.bytes_down - down) / 60,
            "up": (self.proxy.bytes_up - up) / 60,
        }

    def close(self) -> None:
        if self.runs is not None:
            if self.runs.busy:
                self.runs.send_signal(signal.SIGKILL)
                self.runs.wait(30)
            self.runs.close()
            self.runs = None
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
        self.server.stop()
        os.environ.pop(self.password_env, None)

    # -- mail -----------------------------------------------------------------------------

    def _new_mail(self, rng: random.Random, count: int, prefix: str) -> list[tuple[str, bytes]]:
        out = []
        for data in rng.sample(self.pool, count):
            self.serial += 1
            data = _MESSAGE_ID_LINE.sub(
                f"Message-ID: <{prefix}{self.serial}.".encode(), data, count=1
            )
            out.append((message_id_from_header(data), data))
        return out

    def _seed_inbox(
        self, rng: random.Random, count: int, *, seen_share: float, fresh: bool, prefix: str
    ) -> list[str]:
        assert self.account is not None
        mail = []
        for start in range(0, count, len(self.pool)):
            mail += self._new_mail(rng, min(len(self.pool), count - start), prefix)
        seen = [rng.random() < seen_share for _ in mail]
        server, user = self.server, self.account.user
        server.seed(
            user, INBOX, [data for (_mid, data), s in zip(mail, seen, strict=True) if not s]
        )
        server.seed(
            user, INBOX, [data for (_mid, data), s in zip(mail, seen, strict=True) if s], flags="S"
        )
        for (mid, _data), s in zip(mail, seen, strict=True):
            assert mid not in self.expected, mid
            self.expected[mid] = Entry(INBOX, s, fresh)
        return [mid for mid, _data in mail]

    def deliver(self, rng: random.Random, count: int | None = None) -> list[str]:
        """New mail into the inbox (a fifth of it already read on a phone): its Message-IDs."""
        if count is None:
            count = rng.randint(*self.deliveries)
        return self._seed_inbox(rng, count, seen_share=0.2, fresh=True, prefix="fl")

    def span(self, count: int) -> float:
        """Seconds an unfaulted `run --once` takes for `count` new messages."""
        return self.startup_seconds + self.seconds_per_message * count

    def byte_span(self, count: int, direction: Direction) -> int:
        return max(1, int(self.bytes_per_message[direction] * count) + 2000)

    # -- the buyer ------------------------------------------------------------------------

    def _client(self) -> imapclient.IMAPClient:
        assert self.account is not None
        client = imapclient.IMAPClient(self.account.host, self.account.port, ssl=False, timeout=30)
        client.login(self.account.user, self.account.password)
        return client

    def folders(self) -> list[str]:
        client = self._client()
        try:
            return [
                name
                for flags, _delim, name in client.list_folders()
                if b"\\Noselect" not in flags and b"\\NoSelect" not in flags
            ]
        finally:
            client.logout()

    def pick_folder(self, rng: random.Random) -> str:
        """A folder triage files into: mostly one of its recent destinations."""
        existing = [f for f in self.folders() if f.startswith(PARTNER_PREFIX)]
        with Store.open(self.db) as store:
            recent = [f.destination for f in store.filings(ACCOUNT, state=DONE)[-300:]]
        common = [f for f, _n in Counter(recent).most_common(4) if f in existing]
        if common and rng.random() < 0.8:
            return rng.choice(common)
        return rng.choice(existing)

    def delete_folder(self, folder: str) -> set[str]:
        """The buyer deletes `folder` with its mail; returns the Message-IDs that were in it."""
        client = self._client()
        try:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            data = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]) if uids else {}
            inside = {
                message_id_from_header(next(v for k, v in item.items() if k.startswith(b"BODY")))
                for item in data.values()
            }
            client.unselect_folder()
            client.delete_folder(folder)
        finally:
            client.logout()
        return inside

    def rename_folder(self, folder: str, new: str) -> None:
        client = self._client()
        try:
            client.rename_folder(folder, new)
        finally:
            client.logout()
        self.buyer_folders.add(new)

    def reset_uidvalidity(self, folder: str, rng: random.Random, *, renumber: bool) -> str:
        """A new UIDVALIDITY for `folder`: with `renumber`, Dovecot rebuilds the folder's
        index while stopped, so every message gets a new UID too (a restored backup, a
        migration); otherwise `doveadm mailbox update` changes only the UIDVALIDITY."""
        assert self.account is not None
        user = self.account.user
        old = self.status(folder)[0]
        if renumber:
            path = self.server.maildir_path(user, folder)
            with self.server.stopped():
                for index in [path / "dovecot-uidlist", *path.glob("dovecot.index*")]:
                    index.unlink(missing_ok=True)
            if self.status(folder)[0] != old:
                return "renumbered"
        value = old + rng.randint(1, 1000)
        self.server._doveadm("mailbox", "update", "--uid-validity", str(value), "-u", user, folder)
        return "renumbered" if renumber else "UIDVALIDITY only"

    def status(self, folder: str) -> tuple[int, int]:
        client = self._client()
        try:
            info = client.folder_status(folder, [b"UIDVALIDITY", b"UIDNEXT"])
        finally:
            client.logout()
        return int(info[b"UIDVALIDITY"]), int(info[b"UIDNEXT"])

    def sessions_gone(self, timeout: float = 15.0) -> None:
        """Wait until the server has finished every session of the account: a killed client's
        last command (a MOVE, say) still runs to its end on the server, and the next run must
        see its result, as it would after a real crash and restart."""
        assert self.account is not None
        deadline = time.monotonic() + timeout
        user = self.account.user
        while True:
            listing = self.server._doveadm("who", "-1", user)
            if not any(line.split()[:1] == [user] for line in listing.splitlines()[1:]):
                return
            if time.monotonic() > deadline:
                self.server.kick(user)
                return
            time.sleep(0.01)

    # -- running triage -------------------------------------------------------------------

    def _ended(
        self, trial: Trial, what: str, finished: Finished | None, allowed: Iterable[int]
    ) -> Finished | None:
        """Record a run that hung, crashed or exited with a code the fault does not explain."""
        assert self.runs is not None
        if finished is None:
            trial.violations.append(f"{what} hung (no exit within {RUN_TIMEOUT:.0f} s)")
            self.runs.send_signal(signal.SIGKILL)
            finished = self.runs.wait(30)
            if finished is None:
                raise AssertionError("a killed run never ended")
            return finished
        if "Traceback" in finished.log:
            last = [line for line in finished.log.splitlines() if line and line[0] != " "][-1:]
            error = last[0].split(":", 1)[0] if last else "?"
            trial.violations.append(f"{what} crashed ({error}; see {finished.log_path.name})")
        elif finished.code not in set(allowed):
            trial.violations.append(
                f"{what} exited with {finished.code} (see {finished.log_path.name})"
            )
        return finished

    def run_once(
        self, trial: Trial, *, kill_after: float | None = None, allowed: Iterable[int] = (0, 3)
    ) -> Finished | None:
        """A `triage run --once`, maybe killed after `kill_after` s."""
        assert self.runs is not None
        self.runs.start("run", "--once")
        if kill_after is not None:
            finished = self.runs.poll(kill_after)
            if finished is None:
                self.runs.send_signal(signal.SIGKILL)
                finished = self.runs.wait()
            return self._ended(trial, "run --once", finished, (*allowed, KILLED))
        return self._ended(trial, "run --once", self.runs.wait(), allowed)

    def start_forever(self) -> None:
        assert self.runs is not None
        self.runs.start("run")

    def decided(self, message_ids: Sequence[str]) -> set[str]:
        with Store.open(self.db) as store:
            return store.known_message_ids(ACCOUNT, list(message_ids))

    def stop_forever(self, trial: Trial, fresh: Sequence[str], *, kill: bool = False) -> None:
        """Let a long-running `triage run` read `fresh` (it must, within CATCH_UP seconds of
        the fault), then SIGTERM it: it finishes its batch and exits 0."""
        assert self.runs is not None
        deadline = time.monotonic() + CATCH_UP
        pending = set(fresh)
        while pending and not kill:
            early = self.runs.poll(0.1)
            if early is not None:  # it ended by itself: it must not
                self._ended(trial, "triage run", early, ())
                return
            pending -= self.decided(sorted(pending))
            if time.monotonic() > deadline:
                trial.violations.append(
                    f"triage run did not read {len(pending)} new messages within "
                    f"{CATCH_UP:.0f} s of the fault"
                )
                break
        self.runs.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self._ended(trial, "triage run", self.runs.wait(60), (KILLED,) if kill else (0,))

    def wait_idle(self, trial: Trial, fresh: Sequence[str]) -> None:
        """Wait until a long-running `triage run` has read `fresh` and is idling."""
        assert self.runs is not None and self.proxy is not None
        deadline = time.monotonic() + CATCH_UP
        pending = set(fresh)
        while pending and time.monotonic() < deadline:
            pending -= self.decided(sorted(pending))
            time.sleep(0.05)
        self.proxy.wait_quiet(0.3, timeout=CATCH_UP)

    # -- trials ---------------------------------------------------------------------------

    def trial(self, kind: str, rng: random.Random) -> Trial:
        """One trial of `kind`: fault, the next unfaulted run, the checks."""
        assert self.runs is not None and self.proxy is not None
        self.trials += 1
        trial = Trial(self.trials, kind, self.server_name)
        started = time.monotonic()
        self._trials[kind](self, trial, rng)
        self._settle()
        # The next run, unfaulted: it settles what the fault left, and must succeed.
        self.run_once(trial, allowed=(0,))
        for undo in trial.after:
            undo()
        # A store that disagrees stays so: each violation is counted once, when first seen.
        found = [v for v in self.check() if v not in self._reported]
        self._reported.update(found)
        trial.violations += found
        trial.seconds = time.monotonic() - started
        return trial

    def _settle(self) -> None:
        """Everything back to healthy: no run under way, the proxy passing bytes, Dovecot up,
        and the server done with every session of the faulted runs."""
        assert self.runs is not None and self.proxy is not None
        if self.runs.busy:  # a trial leaves none; a failed one might
            self.runs.send_signal(signal.SIGKILL)
            self.runs.wait(30)
        self.proxy.disarm()
        self.proxy.resume()
        self.proxy.reset_all()  # a stalled leg of a killed run would keep its session open
        if not self.server.running:
            with self.server.stopped():  # starts it again on the same port
                pass
        self.sessions_gone()

    def _kill(self, trial: Trial, rng: random.Random) -> None:
        fresh = self.deliver(rng)
        span = self.span(len(fresh))
        choice = rng.random()
        if choice < 0.15:
            # `triage digest` killed (maybe mid-APPEND), then run again: one digest, not two.
            assert self.runs is not None
            self.digests += 1
            until = (date.today() - timedelta(weeks=self.digests)).isoformat()
            if rng.random() < 0.5:  # right after its APPEND, before it is recorded
                self.runs.start("digest", "--until", until, kill_at=APPENDED)
                finished = self.runs.wait()
                when = "after its APPEND"
            else:
                delay = rng.uniform(0, self.digest_seconds)
                self.runs.start("digest", "--until", until)
                finished = self.runs.poll(delay)
                if finished is None:
                    self.runs.send_signal(signal.SIGKILL)
                    finished = self.runs.wait()
                when = f"at {delay * 1000:.0f} ms"
            self._ended(trial, "triage digest", finished, (0, KILLED))
            trial.injected = finished is not None and finished.code == KILLED
            ended = "" if trial.injected else " (had ended)"
            trial.detail = f"triage digest killed {when}{ended}"
            self.digest(trial, until, delivered=True)
        elif choice < 0.75:
            delays = [rng.uniform(0, span)]
            if rng.random() < 0.35:  # the run that recovers is killed too
                delays.append(rng.uniform(0, span / 2))
            codes = []
            for delay in delays:
                finished = self.run_once(trial, kill_after=delay, allowed=(0,))
                codes.append(finished.code if finished else None)
            trial.injected = KILLED in codes
            trial.detail = "run --once killed at " + ", then ".join(
                f"{d * 1000:.0f} ms" + ("" if c == KILLED else " (had ended)")
                for d, c in zip(delays, codes, strict=True)
            )
        else:
            delay = rng.uniform(0, span * 1.5)
            self.start_forever()
            assert self.runs is not None
            early = self.runs.poll(delay)
            if early is not None:
                self._ended(trial, "triage run", early, ())
            else:
                self.stop_forever(trial, fresh, kill=True)
                trial.injected = True
            trial.detail = f"triage run killed at {delay * 1000:.0f} ms"

    def _reset(self, trial: Trial, rng: random.Random) -> None:
        self._proxy_fault(trial, rng, stall=False)

    def _stall(self, trial: Trial, rng: random.Random) -> None:
        self._proxy_fault(trial, rng, stall=True)

    def _proxy_fault(self, trial: Trial, rng: random.Random, *, stall: bool) -> None:
        assert self.runs is not None and self.proxy is not None
        fresh = self.deliver(rng)
        direction: Direction = "down" if rng.random() < 0.75 else "up"
        at = rng.randint(1, self.byte_span(len(fresh), direction))
        where = f"at byte {at:,} {direction}"
        if not stall:
            cuts = self.proxy.cuts
            self.proxy.cut_after(at, direction)
            if rng.random() < 0.7:
                self.run_once(trial)
                trial.detail = f"reset {where}, run --once"
            else:
                self.start_forever()
                self.stop_forever(trial, fresh)
                trial.detail = f"reset {where}, triage run"
            trial.injected = self.proxy.cuts > cuts
            if not trial.injected:
                trial.detail += " (the run ended first)"
            return
        # Stalls only for --once: a long-running run idles, and a silent IDLE shows only at
        # the next IDLE refresh (at least 30 s); --once meets the stall in a command.
        stalls = self.proxy.stalls
        self.proxy.stall_after(at, direction)
        self.runs.start("run", "--once")
        finished = None
        while finished is None and self.proxy.stalls == stalls:
            finished = self.runs.poll(0.02)
        if finished is None:
            trial.injected = True
            wait = rng.uniform(0.1, 1.0)
            then = rng.choice(("resumed", "reset", "killed"))
            time.sleep(wait)
            if then == "resumed":
                self.proxy.resume()
            elif then == "reset":
                self.proxy.reset_all()
            else:
                self.runs.send_signal(signal.SIGKILL)
            finished = self.runs.wait()
            trial.detail = f"stalled {where}, {then} after {wait * 1000:.0f} ms"
        else:
            trial.detail = f"stall {where} (the run ended first)"
        self._ended(trial, "run --once", finished, (0, 3, KILLED))

    def _restart_batch(self, trial: Trial, rng: random.Random) -> None:
        assert self.runs is not None
        fresh = self.deliver(rng)
        delay = rng.uniform(0, self.span(len(fresh)))
        down = rng.uniform(0, 1.0)
        forever = rng.random() < 0.3
        if forever:
            self.start_forever()
        else:
            self.runs.start("run", "--once")
        early = self.runs.poll(delay)
        trial.injected = early is None
        with self.server.stopped():
            time.sleep(down)
        mode = "triage run" if forever else "run --once"
        trial.detail = f"{mode}: Dovecot down at {delay * 1000:.0f} ms for {down * 1000:.0f} ms"
        if early is not None:
            trial.detail += " (the run had ended)"
            self._ended(trial, mode, early, (0,) if not forever else ())
        elif forever:
            self.stop_forever(trial, fresh)
        else:
            self._ended(trial, mode, self.runs.wait(), (0, 3))

    def _restart_idle(self, trial: Trial, rng: random.Random) -> None:
        assert self.runs is not None
        first = self.deliver(rng)
        self.start_forever()
        self.wait_idle(trial, first)
        down = rng.uniform(0, 1.5)
        while_down = rng.random() < 0.5
        with self.server.stopped():
            later = self.deliver(rng, rng.randint(5, 30)) if while_down else []
            time.sleep(down)
        later += self.deliver(rng, rng.randint(5, 30))
        early = self.runs.poll(0)
        trial.injected = early is None
        if early is not None:
            self._ended(trial, "triage run", early, ())
        else:
            self.stop_forever(trial, later)
        trial.detail = f"down {down * 1000:.0f} ms" + (
            ", mail came meanwhile" if while_down else ""
        )

    def kill_points(self) -> list[str]:
        """Exact moments for a run to kill itself (see FORK_SERVER), each a state the next run
        must settle: intents recorded but not sent; moved but not recorded; without MOVE,
        copied but not yet removed from the inbox."""
        points = [
            "triage.store:Store.add_intents:after",
            "triage.mailbox.imap:ImapMailbox.move:after",
        ]
        if not self.move:
            points.append("triage.mailbox.imap:ImapMailbox._expunge_exactly:before")
        return points

    def pending_destinations(self) -> list[str]:
        """Where the unfinished filings a killed run left were going."""
        with Store.open(self.db) as store:
            return sorted({f.destination for f in store.filings(ACCOUNT, state=INTENT)})

    def doubled_folders(self) -> list[str]:
        """Folders holding a copy of a message still in the inbox (a run without MOVE killed
        between its COPY and its EXPUNGE)."""
        assert self.account is not None
        census = quick_census(self.account)
        inbox = {message_id for message_id, _flags in census.get(INBOX, [])}
        return sorted(
            folder
            for folder, items in census.items()
            if folder != INBOX and any(message_id in inbox for message_id, _flags in items)
        )

    def _buyer_acts(
        self, trial: Trial, rng: random.Random, act: Callable[[list[str]], str]
    ) -> None:
        """Deliver, run triage, and have the buyer `act` before a run, during one (`--once` or
        long-running), or amid one: after a kill -9, random or at an exact point, left filings
        unfinished. `act` gets the destinations of those (mostly, where a killed run without
        MOVE left a copy, those folders), and says what it did."""
        assert self.runs is not None
        fresh = self.deliver(rng)
        span = self.span(len(fresh))
        when = rng.choice(("before", "during --once", "during triage run", "amid"))
        if when == "amid":
            if rng.random() < 0.5:
                delay = rng.uniform(0, span)
                finished = self.run_once(trial, kill_after=delay, allowed=(0,))
                how = f"killed at {delay * 1000:.0f} ms"
            else:
                point = f"{rng.choice(self.kill_points())}:{rng.randint(1, 3)}"
                self.runs.start("run", "--once", kill_at=point)
                finished = self._ended(trial, "run --once", self.runs.wait(), (0, KILLED))
                how = "killed " + point.split(":", 1)[1].replace(":", " ")
            killed = finished is not None and finished.code == KILLED
            pending = self.pending_destinations()
            doubled = self.doubled_folders() if killed and not self.move else []
            if doubled and rng.random() < 0.7:  # where the copy is: the hardest case
                pending = doubled
            trial.detail = f"{act(pending)} after run --once was {how}" + (
                f", {len(pending)} destinations unsettled" if killed else " (it had ended)"
            )
        elif when == "before":
            trial.detail = f"{act([])} before run --once"
            self.run_once(trial)
        elif when == "during --once":
            delay = rng.uniform(0, span)
            self.runs.start("run", "--once")
            early = self.runs.poll(delay)
            trial.detail = f"{act([])} during run --once at {delay * 1000:.0f} ms"
            if early is not None:
                trial.detail += " (it had ended)"
            self._ended(trial, "run --once", early or self.runs.wait(), (0, 3))
        else:
            delay = rng.uniform(0, span * 1.5)
            self.start_forever()
            early = self.runs.poll(delay)
            trial.detail = f"{act([])} during triage run at {delay * 1000:.0f} ms"
            if early is not None:
                self._ended(trial, "triage run", early, ())
            else:
                self.stop_forever(trial, fresh)
        trial.injected = True

    def _folder_deleted(self, trial: Trial, rng: random.Random) -> None:
        gone: set[str] = set()

        def act(pending: list[str]) -> str:
            folder = rng.choice(pending) if pending else self.pick_folder(rng)
            gone.update(self.delete_folder(folder))
            self._deleted = (folder, gone)
            return f"{folder} ({len(gone)} messages) deleted"

        self._buyer_acts(trial, rng, act)

    def _folder_renamed(self, trial: Trial, rng: random.Random) -> None:
        def act(pending: list[str]) -> str:
            folder = rng.choice(pending) if pending else self.pick_folder(rng)
            leaf = folder.rsplit("/", 1)[-1]
            new = rng.choice((f"{PARTNER_PREFIX}{leaf} {self.trials}", f"Old/{leaf} {self.trials}"))
            self.rename_folder(folder, new)
            return f"{folder} renamed {new}"

        self._buyer_acts(trial, rng, act)

    def _uidvalidity(self, trial: Trial, rng: random.Random) -> None:
        renumber = rng.random() < 0.3
        # Mostly a partner folder; now and then the inbox, which triage files out of.
        inbox = rng.random() < 0.2

        def act(pending: list[str]) -> str:
            folder = rng.choice(pending) if pending else self.pick_folder(rng)
            folder = INBOX if inbox else folder
            self._reset_folder = folder
            return f"{folder}: {self.reset_uidvalidity(folder, rng, renumber=renumber)}"

        self._buyer_acts(trial, rng, act)

    def _quota(self, trial: Trial, rng: random.Random) -> None:
        """A full destination folder (MOVE or COPY into it refused), and a full inbox, where
        triage APPENDs the weekly digest (`triage digest`, of a past week: a new one each
        time, so it is always due)."""
        assert self.account is not None and self.proxy is not None and self.runs is not None
        folder = self.pick_folder(rng)
        self.server.set_quota(self.account.user, folder, INBOX)
        refusals = self.proxy.refusals
        if self.move:
            # Dovecot never refuses a MOVE for quota (see DovecotServer.set_quota): the proxy
            # answers the MOVE into the full folder as a server that does would.
            target = re.escape(imap_utf7.encode(folder))
            self.proxy.refuse(rb'\S+ UID MOVE [0-9:,]+ "?' + target + rb'"?\r\n$', OVERQUOTA)
        fresh = self.deliver(rng)
        log_from = self.runs.count + 1
        if rng.random() < 0.75:
            mode = "run --once"
            self.run_once(trial)
        else:
            mode = "triage run"
            self.start_forever()
            self.stop_forever(trial, fresh)
        refused = self.proxy.refusals - refusals
        if not self.move:  # Dovecot itself refused the COPYs: the runs' logs say so
            refused = sum(
                (self.runs.logs / f"run-{n}.log")
                .read_text(errors="replace")
                .count("could not file")
                for n in range(log_from, self.runs.count + 1)
            )
        self.digests += 1
        until = (date.today() - timedelta(weeks=self.digests)).isoformat()
        digest = self.digest(trial, until, delivered=False)
        trial.injected = refused > 0 or digest
        command = "MOVE (proxy)" if self.move else "COPY (Dovecot)"
        trial.detail = (
            f"{folder} and {INBOX} full, {mode}: {refused} {command} refused, "
            f"digest APPEND {'refused' if digest else 'not refused'}"
        )

        def lift() -> None:
            assert self.account is not None and self.proxy is not None
            self.proxy.refuse(None)
            self.server.set_quota(self.account.user)
            self.digest(trial, until, delivered=True)

        trial.after.append(lift)  # after the next run: it meets the full folder too

    def digest(self, trial: Trial, until: str, *, delivered: bool) -> bool:
        """`triage digest --until DATE`: into a full inbox (not `delivered`) it must fail
        (exit 3) and leave no trace, neither in the mailbox (the check sees to that) nor in
        the store; with room, it must be delivered. Whether the server said OVERQUOTA."""
        assert self.runs is not None
        self.runs.start("digest", "--until", until)
        finished = self._ended(
            trial, "triage digest", self.runs.wait(), (0,) if delivered else (3,)
        )
        week = week_key(datetime.fromisoformat(until).astimezone())
        with Store.open(self.db) as store:
            message_id = store.digest_delivered(ACCOUNT, week)
        if delivered and message_id is None:
            trial.violations.append(f"the digest for {week} was not delivered into room")
        elif not delivered and message_id is not None:
            trial.violations.append(f"the refused digest for {week} is recorded as delivered")
        return finished is not None and "OVERQUOTA" in finished.log

    _trials: ClassVar[dict[str, Callable[[FaultLab, Trial, random.Random], None]]] = {
        KILL: _kill,
        RESET: _reset,
        STALL: _stall,
        RESTART_BATCH: _restart_batch,
        RESTART_IDLE: _restart_idle,
        FOLDER_DELETED: _folder_deleted,
        FOLDER_RENAMED: _folder_renamed,
        UIDVALIDITY: _uidvalidity,
        QUOTA: _quota,
    }
    _deleted: tuple[str, set[str]] | None = None
    _reset_folder: str | None = None

    # -- the invariants -------------------------------------------------------------------

    def check(self) -> list[str]:
        """The invariants after a trial's next run (see the module docstring); the violations."""
        assert self.account is not None
        uidvalidity: dict[str, int] = {}
        census = quick_census(self.account, uidvalidity)
        places: dict[str, list[str]] = defaultdict(list)
        flags: dict[str, frozenset[bytes]] = {}
        for folder, items in census.items():
            for message_id, message_flags in items:
                places[message_id].append(folder)
                flags[message_id] = message_flags
        with Store.open(self.db) as store:
            filings = store.filings(ACCOUNT)
            fresh = [m for m, e in self.expected.items() if e.fresh and m in places]
            decided = store.known_message_ids(ACCOUNT, fresh)
            marks = {f: store.mark(ACCOUNT, f) for f in uidvalidity}
            # The weekly digests triage delivered (`triage digest`, or `triage run` when one
            # fell due) are expected, unread, where they were put; one recorded but not in
            # the mailbox shows as lost.
            digests = [row[0] for row in store.db.execute("SELECT message_id FROM digests")]
        assert self.config is not None
        for message_id in digests:
            self.expected.setdefault(message_id, Entry(self.config.run.digest_folder, False, False))
        violations: list[str] = []
        gone: set[str] = set()
        if self._deleted is not None:
            # Gone with the folder the buyer deleted: what was in it, and what triage was
            # filing there (a MOVE may have landed just before the DELETE).
            folder, inside = self._deleted
            gone = inside | {f.message_id for f in filings if f.destination == folder}
            self._deleted = None
        for message_id, where in places.items():
            if len(where) > 1:
                violations.append(f"{message_id} exists {len(where)} times: {sorted(where)}")
            if message_id not in self.expected:
                violations.append(f"{message_id} appeared from nowhere in {where[0]}")
        for message_id, entry in list(self.expected.items()):
            if message_id in places:
                continue
            if message_id in gone:
                del self.expected[message_id]  # the buyer deleted it
            else:
                violations.append(f"{message_id} (delivered to {entry.home}) was lost")
        for message_id, entry in self.expected.items():
            message_flags = flags.get(message_id)
            if message_flags is None:
                continue
            if (SEEN in message_flags) != entry.seen:
                state = "marked read" if entry.seen is False else "marked unread"
                violations.append(f"{message_id} was {state}")
            if DELETED in message_flags:
                violations.append(f"{message_id} left flagged \\Deleted")
        # The store agrees with the server.
        latest = {f.message_id: f for f in filings}  # ordered by id: the last filing wins
        for filing in filings:
            if filing.state == INTENT:
                violations.append(f"unfinished intent: {filing.message_id} to {filing.destination}")
        for message_id, filing in latest.items():
            where = places.get(message_id)
            moved_by_buyer = where is None or bool(set(where) & self.buyer_folders)
            if filing.state == VANISHED and not moved_by_buyer:
                violations.append(f"store says {message_id} vanished; it is in {where}")
        for message_id, where in places.items():
            entry = self.expected.get(message_id)
            if entry is None or set(where) & self.buyer_folders or len(where) != 1:
                continue
            filing = latest.get(message_id)
            should = filing.destination if filing and filing.state == DONE else entry.home
            if where[0] != should:
                said = f"{filing.state} filing to {filing.destination}" if filing else "no filing"
                violations.append(f"{message_id} is in {where[0]}; the store says {said}")
        unread = sorted(set(fresh) - decided)
        if unread:
            violations.append(f"{len(unread)} new messages never read, e.g. {unread[:3]}")
        inbox_mark = marks.get(INBOX)
        if inbox_mark is None or inbox_mark.uidvalidity != uidvalidity.get(INBOX):
            violations.append(f"the store's inbox mark {inbox_mark} disagrees with the server")
        if self._reset_folder is not None:
            folder, self._reset_folder = self._reset_folder, None
            mark = marks.get(folder)
            if folder in uidvalidity and (mark is None or mark.uidvalidity != uidvalidity[folder]):
                violations.append(
                    f"after its UIDVALIDITY reset the store's mark of {folder} is {mark}, "
                    f"the server's UIDVALIDITY {uidvalidity[folder]}"
                )
        return violations


class Rounds:
    """Kinds of fault in rounds: each round has every kind once, in random order, so that any
    number of trials (also spread over several labs) is as even over the kinds as it can be."""

    def __init__(self, rng: random.Random, kinds: Sequence[str] = KINDS) -> None:
        self.rng = rng
        self.kinds = list(kinds)
        self.order: list[str] = []

    def next(self) -> str:
        if not self.order:
            self.order = list(self.kinds)
            self.rng.shuffle(self.order)
        return self.order.pop()


def run_trials(
    lab: FaultLab,
    trials: int,
    rounds: Rounds,
    tally: Tally,
    *,
    out: Callable[[str], None] = print,
    show: int = 5,
) -> None:
    """`trials` trials on `lab`, of the kinds `rounds` gives, each trial's line and its first
    `show` violations printed as it ends."""
    for _ in range(trials):
        trial = lab.trial(rounds.next(), rounds.rng)
        tally.add(trial)
        out(trial.line())
        for violation in trial.violations[:show]:
            out(f"    {violation}")
        if len(trial.violations) > show:
            out(f"    ... and {len(trial.violations) - show} more")

"""Crash safety and resilience of `triage run` against a real Dovecot (DESIGN.md section 3).

* kill -9 of `triage run --once` at random moments (and at chosen ones), on servers with and
  without MOVE, then a normal run: every message exists exactly once, where the model puts it,
  with its \\Seen flag as delivered, and the store has no unfinished intent;
* the connection cut mid-batch by a TCP proxy (tests/tcpproxy.py) at many byte offsets;
* `run_forever` through a dropped connection, a server restart, a server that stays down and a
  stalled connection: it reconnects with capped exponential backoff and files new mail;
* SIGTERM and SIGINT, to `triage run` and to `triage run --once`: the current batch is
  finished, the rest left for the next run, and the exit code is 0.

The killed runs are forked from a process that has imported everything already, so a random
delay lands in the half second of real work rather than in two seconds of imports, and twenty
trials fit in half a minute. The SIGTERM/SIGINT tests start the real `python -m triage`.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

import pytest
from dovecot import DovecotServer, ImapAccount
from faultlab import Runs, quick_census
from helpers import census, message_id_of, seed_history, trained_config
from tcpproxy import Direction, TcpProxy

from triage import engine, sample
from triage.config import Config, load_config
from triage.errors import ConnectionLost
from triage.mailbox.base import MoveResult
from triage.mailbox.imap import ImapMailbox
from triage.message import parse
from triage.planner import Planner, header_hash
from triage.store import DONE, INTENT, VANISHED, Store

INBOX = "INBOX"
SEEN = b"\\Seen"
DELETED = b"\\Deleted"

_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


# -- fixtures -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Mail:
    message_id: str
    data: bytes
    seen: bool  # delivered with \Seen (read on the phone): must stay so, and the rest unread
    destination: str  # where the model files it; INBOX when it stays


class Bench:
    """A trained account on a server, its config, and every message it should hold."""

    def __init__(
        self,
        account: ImapAccount,
        config: Config,
        buyer: sample.SampleMailbox,
        seed: int,
    ) -> None:
        self.account = account  # the server's own port, for the census and seeding
        self.config = config
        self.rng = random.Random(seed)
        self.history = {message_id_of(m.data): m.folder for m in buyer.history}
        self.expected: dict[str, Mail] = {}
        account_config = config.account()
        self.planner = Planner(account_config, engine.load_model(config, account_config))
        # Already-filed mail under new Message-IDs: the model files most of it with confidence,
        # so most messages of a batch are moved, to several folders.
        self.pool = [m.data for m in (*buyer.new_week, *buyer.history)]
        self.deliveries = 0

    @property
    def db(self) -> Path:
        return engine.state_paths(self.config)[0]

    def deliver(self, count: int, seen_share: float = 0.2, *, moving: bool = False) -> list[Mail]:
        """`count` new messages into the inbox, each Message-ID new to the account; with
        `moving`, only messages the model files somewhere else."""
        self.deliveries += 1
        tag = f"Message-ID: <d{self.deliveries}.".encode()
        datas = [
            re.sub(rb"^Message-ID: <", tag, d, count=1, flags=re.M)
            for d in self.rng.sample(self.pool, count * 4 if moving else count)
        ]
        plan = self.planner.plan(
            list(range(len(datas))),
            [parse(d) for d in datas],
            [header_hash(d) for d in datas],
            set(),
        )
        mails = [
            Mail(message_id_of(d), d, self.rng.random() < seen_share, p.destination)
            for d, p in zip(datas, plan, strict=True)
            if p.destination != INBOX or not moving
        ][:count]
        assert len(mails) == count
        assert not {m.message_id for m in mails} & set(self.expected)
        server = self.account.server
        server.seed(self.account.user, INBOX, [m.data for m in mails if not m.seen])
        server.seed(self.account.user, INBOX, [m.data for m in mails if m.seen], flags="S")
        self.expected.update((m.message_id, m) for m in mails)
        return mails

    def places(
        self, thorough: bool = False
    ) -> tuple[dict[str, list[str]], dict[str, frozenset[bytes]]]:
        """Message-ID -> the folders it is in, and its flags, by an independent census
        (`thorough`: the shared one, with imapclient's parser, 5 times slower)."""
        places: dict[str, list[str]] = defaultdict(list)
        flags: dict[str, frozenset[bytes]] = {}
        for folder, items in (census if thorough else quick_census)(self.account).items():
            for message_id, message_flags in items:
                places[message_id].append(folder)
                flags[message_id] = message_flags
        return places, flags

    def intents(self) -> int:
        with Store.open(self.db) as store:
            return len(store.filings(self.config.account().name, state=INTENT))

    def sessions_gone(self, timeout: float = 10.0) -> None:
        """Wait until the server has finished with every session of this user.

        A killed client's last command (a MOVE, say) still runs to its end on the server,
        which only then notices the dead socket; the next run must see the result, as it
        would after a real crash and restart.
        """
        deadline = time.monotonic() + timeout
        user = self.account.user
        while True:
            listing = self.account.server._doveadm("who", "-1", user)
            if not any(line.split()[:1] == [user] for line in listing.splitlines()[1:]):
                return
            assert time.monotonic() < deadline, f"sessions of {user} still open:\n{listing}"
            time.sleep(0.01)

    def check(self, what: str, thorough: bool = False) -> None:
        """Every message exactly once, where the model puts it, flags as delivered; the store
        agrees: no unfinished intent, each moved message has one done filing, found there."""
        places, flags = self.places(thorough)
        if thorough:  # the quick census must see the same
            assert (places, flags) == self.places(), what
        twice = {mid: folders for mid, folders in places.items() if len(folders) > 1}
        assert not twice, f"{what}: messages in more than one place: {list(twice.items())[:5]}"
        missing = (set(self.expected) | set(self.history)) - set(places)
        assert not missing, f"{what}: {len(missing)} messages lost: {sorted(missing)[:5]}"
        unknown = set(places) - set(self.expected) - set(self.history)
        assert not unknown, f"{what}: messages nobody delivered: {sorted(unknown)[:5]}"
        # The buyer's filed (and read) mail is never touched.
        moved = [mid for mid, folder in self.history.items() if places[mid] != [folder]]
        assert not moved, f"{what}: filed mail moved: {moved[:5]}"
        unread = [mid for mid in self.history if SEEN not in flags[mid]]
        assert not unread, f"{what}: filed mail lost its \\Seen: {unread[:5]}"
        misplaced = {
            mid: (places[mid][0], mail.destination)
            for mid, mail in self.expected.items()
            if places[mid][0] != mail.destination
        }
        assert not misplaced, f"{what}: (found, expected): {list(misplaced.items())[:5]}"
        seen_changed = [
            mid for mid, mail in self.expected.items() if (SEEN in flags[mid]) != mail.seen
        ]
        assert not seen_changed, f"{what}: \\Seen changed on {seen_changed[:5]}"
        deleted = [mid for mid, f in flags.items() if DELETED in f]
        assert not deleted, f"{what}: left flagged \\Deleted: {deleted[:5]}"
        with Store.open(self.db) as store:
            filings = store.filings(self.config.account().name)
        states = Counter(f.state for f in filings)
        assert states[INTENT] == 0, f"{what}: unfinished intents left: {states}"
        assert states[VANISHED] == 0, f"{what}: filings lost track of their message: {states}"
        done = [f for f in filings if f.state == DONE]
        astray = [
            (f.message_id, f.destination) for f in done if f.destination not in places[f.message_id]
        ]
        assert not astray, f"{what}: done filings whose message is elsewhere: {astray[:5]}"
        filed = Counter(f.message_id for f in done)
        wrong_count = {
            mid: filed[mid]
            for mid, mail in self.expected.items()
            if filed[mid] != (mail.destination != INBOX)
        }
        assert not wrong_count, f"{what}: done filings per message: {list(wrong_count.items())[:5]}"


def make_bench(
    account: ImapAccount,
    buyer: sample.SampleMailbox,
    model_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    port: int | None = None,
    batch_size: int = 20,
    seed: int = 1,
) -> Bench:
    """A trained account whose first run (which leaves existing mail alone) is behind it."""
    monkeypatch.setenv("TRIAGE_TEST_PASSWORD", account.password)
    seed_history(account, buyer)
    via = dataclasses.replace(account, port=port) if port else account
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = trained_config(tmp_path, via, buyer, model_cache).path
    assert path is not None
    text = path.read_text()
    assert "batch_size = 50" in text
    path.write_text(text.replace("batch_size = 50", f"batch_size = {batch_size}"))
    config = load_config(path)
    assert engine.run_once(config, config.account()).read == 0
    return Bench(account, config, buyer, seed)


# -- killed runs --------------------------------------------------------------------------------


@pytest.fixture
def runs_for(tmp_path: Path) -> Iterator[Callable[[Bench], Runs]]:
    made: list[Runs] = []

    def start(bench: Bench) -> Runs:
        assert bench.config.path is not None
        logs = tmp_path / f"logs-{len(made)}"
        logs.mkdir()
        made.append(Runs(bench.config.path, logs))
        return made[-1]

    yield start
    for runs in made:
        runs.close()


def log_times(stderr: str, pattern: str) -> list[float]:
    """Wall-clock times of the log lines that contain `pattern`."""
    times = []
    for line in stderr.splitlines():
        match = _LOG_TIME.match(line)
        if match and pattern in line:
            times.append(datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return times


def phase_of(code: int, log: str, before: int, intents: int, doubled: int) -> tuple[str, str]:
    """Where a kill landed, as far as the log, the store and the server tell: a phase, and
    a detail for the trial's line."""
    batches = f"after {log.count('batch of')} batches"
    if code == 0:
        return "after the end", ""
    if "connected as" not in log:
        return "start (model, connect)", ""
    if before and "reconciled" not in log:
        return "reconcile", f"{before} intents to settle"
    if doubled:
        return "copied, not yet expunged", f"{doubled} in two folders, {batches}"
    if intents:
        return "intents written, move unfinished", f"{intents} intents, {batches}"
    return "fetch, classify, record", batches


def killed_run(bench: Bench, runs: Runs, delay: float, kill_at: str = "") -> tuple[str, int]:
    """A run SIGKILLed after `delay` s (or by itself at `kill_at`): where the kill landed, and
    how many intents it left unfinished."""
    before = bench.intents()
    if kill_at:
        code, log, _started = runs.run(kill_at=kill_at)
        assert code == -signal.SIGKILL, f"{kill_at} never reached (exit {code}):\n{log[-3000:]}"
    else:
        code, log, _started = runs.run(signal_after=delay)
        assert code in (0, -signal.SIGKILL), f"run failed (exit {code}):\n{log[-3000:]}"
    assert "Traceback" not in log, log
    bench.sessions_gone()
    intents = bench.intents()
    places, _flags = bench.places()
    doubled = sum(len(folders) > 1 for folders in places.values())
    phase, detail = phase_of(code, log, before, intents, doubled)
    when = kill_at or f"{delay * 1000:4.0f} ms"
    print(f"  killed at {when}: {phase}{': ' + detail if detail else ''}")
    return phase, intents


def complete_and_check(bench: Bench, intents: int, what: str) -> None:
    """A normal run after the crash settles every intent; then the invariants hold."""
    report = engine.run_once(bench.config, bench.config.account())
    assert sum(report.reconciled.values()) == intents, (what, report.reconciled)
    bench.check(what)


def calibrate(bench: Bench, runs: Runs, count: int) -> float:
    """Seconds from the start to the last batch of an uninterrupted run: where kills aim."""
    bench.deliver(count)
    code, log, started = runs.run()
    assert code == 0, log
    batches = log_times(log, "batch of")
    assert len(batches) == -(-count // bench.config.run.batch_size), log
    bench.check("uninterrupted run")
    return batches[-1] - started + 0.02


def kill_trials(bench: Bench, runs: Runs, *, trials: int, count: int, seed: int) -> Counter[str]:
    """`trials` times: deliver, kill a run (sometimes twice), complete, check."""
    span = calibrate(bench, runs, count)
    rng = random.Random(seed)
    phases: Counter[str] = Counter()
    for trial in range(trials):
        bench.deliver(count)
        # Uniform over the run; a third of the trials also kill the run that recovers.
        delays = [rng.uniform(0, span)]
        if rng.random() < 0.35:
            delays.append(rng.uniform(0, span / 2))
        intents = 0
        print(f"trial {trial}:")
        for kill in delays:
            phase, intents = killed_run(bench, runs, kill)
            phases[phase] += 1
        complete_and_check(bench, intents, f"trial {trial} (kills at {delays})")
    print(f"span {span:.2f} s; phases: {dict(phases)}")
    bench.check(f"after {trials} trials", thorough=True)
    return phases


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_and_duplicates_nothing(
    dovecot: DovecotServer,
    buyer: sample.SampleMailbox,
    model_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    runs_for: Callable[[Bench], Runs],
) -> None:
    bench = make_bench(dovecot.new_account("kill9"), buyer, model_cache, tmp_path, monkeypatch)
    phases = kill_trials(bench, runs_for(bench), trials=22, count=200, seed=20261116)
    # The kills spread over the run: many land in the middle of the work.
    assert sum(phases.values()) - phases["after the end"] - phases["start (model, connect)"] >= 10


# Crashes at exact points: (kill-spec, what the mailbox or store must show right after).
MOVE_POINTS = [
    ("triage.store:Store.add_intents:after:2", "intents"),  # recorded, MOVE not sent
    ("triage.mailbox.imap:ImapMailbox.move:after:3", "intents"),  # moved, not marked done
    ("triage.store:Store.set_mark:before:2", "clean"),  # batch done, sync mark not moved
]
NOMOVE_POINTS = [
    ("triage.mailbox.imap:ImapMailbox._expunge_exactly:before:2", "doubled"),  # COPY only
    ("imapclient:IMAPClient.uid_expunge:before:1", "flagged"),  # COPY, \Deleted, no EXPUNGE
    ("triage.mailbox.imap:ImapMailbox.move:after:2", "intents"),  # all done but the record
]


def crash_at_points(bench: Bench, runs: Runs, points: list[tuple[str, str]]) -> None:
    for spec, shows in points:
        bench.deliver(120)
        _phase, intents = killed_run(bench, runs, 0, kill_at=spec)
        places, flags = bench.places()
        doubled = [mid for mid, folders in places.items() if len(folders) > 1]
        flagged = [mid for mid, f in flags.items() if DELETED in f]
        if shows == "intents":
            assert intents, f"{spec}: no intent left"
        elif shows == "doubled":
            assert intents and doubled and not flagged, f"{spec}: {intents} {doubled} {flagged}"
        elif shows == "flagged":
            assert intents and doubled and flagged, f"{spec}: {intents} {doubled} {flagged}"
        else:
            assert not intents and not doubled, spec
        complete_and_check(bench, intents, spec)


@pytest.mark.slow
def test_kill_9_at_exact_points_with_move(
    dovecot: DovecotServer,
    buyer: sample.SampleMailbox,
    model_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    runs_for: Callable[[Bench], Runs],
) -> None:
    bench = make_bench(dovecot.new_account("points"), buyer, model_cache, tmp_path, monkeypatch)
    runs = runs_for(bench)
    crash_at_points(bench, runs, MOVE_POINTS)
    # Killed again while reconciling (after settling the first group, before recording it).
    bench.deliver(120)
    _phase, intents = killed_run(bench, runs, 0, "triage.mailbox.imap:ImapMailbox.move:after:2")
    assert intents
    _phase, left = killed_run(bench, runs, 0, "triage.store:Store.set_state:before:1")
    assert left == intents
    complete_and_check(bench, intents, "killed in reconcile")


@pytest.mark.slow
def test_kill_9_without_move_leaves_no_copy_behind(
    dovecot_nomove: DovecotServer,
    buyer: sample.SampleMailbox,
    model_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    runs_for: Callable[[Bench], Runs],
) -> None:
    account = dovecot_nomove.new_account("nomove")
    bench = make_bench(account, buyer, model_cache, tmp_path, monkeypatch, seed=2)
    runs = runs_for(bench)
    crash_at_points(bench, runs, NOMOVE_POINTS)
    # The reconcile that removes the source copies is itself killed right after it did so.
    bench.deliver(120)
    spec = "triage.mailbox.imap:ImapMailbox._expunge_exactly:before:3"
    _phase, intents = killed_run(bench, runs, 0, spec)
    _phase, left = killed_run(bench, runs, 0, "triage.mailbox.imap:ImapMailbox.delete:after:1")
    assert left == intents and not any(len(f) > 1 for f in bench.places()[0].values())
    complete_and_check(bench, intents, "killed after the reconcile's delete")
    kill_trials(bench, runs, trials=10, count=160, seed=7)


@pytest.mark.slow
def test_sigterm_and_sigint_stop_run_once_between_batches(
    dovecot: DovecotServer,
    buyer: sample.SampleMailbox,
    model_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    runs_for: Callable[[Bench], Runs],
) -> None:
    """`run --once` (cron) stops at the next batch boundary too, with exit code 0."""
    bench = make_bench(dovecot.new_account("stop-once"), buyer, model_cache, tmp_path, monkeypatch)
    runs = runs_for(bench)
    rng = random.Random(3)
    stopped_early = 0
    for signum in (signal.SIGTERM, signal.SIGINT) * 3:
        bench.deliver(240)
        # Half the signals land right after the first batch (so the stop is always seen
        # between batches), half at a random moment (maybe before, maybe after the end).
        if stopped_early < 3:
            code, log, _started = runs.run(signal_on="batch of", signum=signum)
        else:
            code, log, _started = runs.run(signal_after=rng.uniform(0.15, 0.5), signum=signum)
        assert code == 0, log
        assert "Traceback" not in log, log
        left = re.search(r"stopping: ([0-9]+) of 240 new messages left", log)
        stopped_early += bool(left)
        assert left or log.count("batch of") == 12, log
        if left:
            assert f"{signum.name} received" in log, log
        bench.sessions_gone()
        assert bench.intents() == 0, log
        complete_and_check(bench, 0, f"after {signum.name}")
    assert stopped_early >= 3


# -- connections cut mid-batch ------------------------------------------------------------------


@pytest.mark.slow
def test_connection_cut_mid_batch_raises_connection_lost_and_loses_nothing(
    dovecot: DovecotServer,
    buyer: sample.SampleMailbox,
    model_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = dovecot.new_account("cut")
    with TcpProxy(dovecot.port) as proxy:
        bench = make_bench(
            account, buyer, model_cache, tmp_path, monkeypatch, port=proxy.port, batch_size=25
        )
        config, account_config = bench.config, bench.config.account()
        # A healthy run measures how many bytes a run of this size moves each way.
        bench.deliver(100)
        down, up = proxy.bytes_down, proxy.bytes_up
        assert engine.run_once(config, account_config).read == 100
        down, up = proxy.bytes_down - down, proxy.bytes_up - up
        bench.check("healthy run through the proxy")
        # Cuts at a share of those bytes from the start of a run (most land in a FETCH), and
        # cuts armed as the k-th MOVE starts: "up" loses the command, "down" its answer.
        cuts: list[tuple[Direction, float, int]] = [
            *(("down", share, 0) for share in (0.01, 0.08, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95)),
            *(("up", share, 0) for share in (0.05, 0.3, 0.6, 0.9)),
            ("down", 1, 1),
            ("down", 40, 4),
            ("up", 4, 2),
            ("up", 1, 7),
        ]
        armed: dict[str, Direction | int] = {"call": 0, "at": 0, "bytes": 0, "direction": "up"}
        move = ImapMailbox.move

        def move_and_maybe_cut(self: ImapMailbox, uids: Sequence[int], folder: str) -> MoveResult:
            armed["call"] = int(armed["call"]) + 1
            if armed["call"] == armed["at"]:
                proxy.cut_after(int(armed["bytes"]), "up" if armed["direction"] == "up" else "down")
            return move(self, uids, folder)

        monkeypatch.setattr(ImapMailbox, "move", move_and_maybe_cut)
        outcomes: Counter[str] = Counter()
        for direction, share_or_bytes, kth_move in cuts:
            if kth_move:
                what = f"cut {direction} {share_or_bytes} bytes into move {kth_move}"
                armed.update(call=0, at=kth_move, bytes=int(share_or_bytes), direction=direction)
            else:
                what = f"cut {direction} at {share_or_bytes:.0%}"
                armed.update(call=0, at=0)
                total = down if direction == "down" else up
                proxy.cut_after(max(1, int(total * share_or_bytes)), direction)
            bench.deliver(100)
            fired = proxy.cuts
            try:
                engine.run_once(config, account_config)
            except ConnectionLost as exc:
                assert exc.retryable and f"127.0.0.1:{proxy.port}" in str(exc), (what, exc)
                outcomes["connection lost"] += 1
            else:
                assert not kth_move, f"{what}: the run went on"
                outcomes["completed"] += 1
            proxy.disarm()
            armed.update(call=0, at=0)
            bench.sessions_gone()
            intents = bench.intents()
            print(f"{what}: fired {proxy.cuts > fired}, {intents} intents left")
            assert intents or not kth_move, f"{what}: the cut move left no intent"
            outcomes["left intents"] += bool(intents)
            complete_and_check(bench, intents, what)
        print(dict(outcomes))
        assert outcomes["connection lost"] >= len(cuts) - 2, outcomes
        bench.check("after the cuts", thorough=True)


# -- the long-running loop ----------------------------------------------------------------------


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.1)


def test_a_stalled_idle_times_out_within_the_connect_timeout(
    dovecot: DovecotServer,
) -> None:
    account = dovecot.new_account("stall")
    with TcpProxy(dovecot.port) as proxy:
        mailbox = ImapMailbox(
            account.host,
            account.user,
            lambda: account.password,
            port=proxy.port,
            security="plain",
            timeout=1,
            idle_refresh=1,
        )
        with mailbox:
            mailbox.select(INBOX)
            assert mailbox.wait(1.5) is False  # two IDLE sessions, nothing arrived
            # Silent from 0.3 s into the next IDLE session: at its end (1 s), DONE gets no
            # answer; the wait for it is `timeout` (1 s), not the 120 s other commands get.
            stall = threading.Timer(0.3, proxy.stall)
            started = time.monotonic()
            stall.start()
            with pytest.raises(ConnectionLost, match="timed out while waiting"):
                mailbox.wait(10)
            assert time.monotonic() - started < 1 + 1 + 1
            assert proxy.cuts == 0 and proxy.open_connections == 1  # nothing was reset
            closing = time.monotonic()
        # Closing does not wait for a LOGOUT over the dead connection either.
        assert time.monotonic() - closing < 1


@pytest.mark.slow
def test_run_forever_reconnects_with_capped_backoff_and_files_new_mail(
    buyer: sample.SampleMailbox,
    model_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="triage")
    caplog.set_level(logging.DEBUG, logger="tcpproxy")  # its cuts and refusals, on failure
    # A server of its own: it is restarted and stopped here.
    with DovecotServer() as server, TcpProxy(server.port) as proxy:
        bench = make_bench(
            server.new_account("forever"), buyer, model_cache, tmp_path, monkeypatch,
            port=proxy.port,
        )  # fmt: skip
        # connect_timeout bounds the wait for the answer to DONE; idle_refresh is set below the
        # config's 30 s minimum so that a stalled IDLE shows within seconds, not half a minute.
        run = dataclasses.replace(bench.config.run, connect_timeout=2, idle_refresh=2)
        config = dataclasses.replace(bench.config, run=run)
        stop = threading.Event()
        errors: list[BaseException] = []

        def loop() -> None:
            try:
                engine.run_forever(config, config.account(), stop=stop.is_set, max_backoff=2.0)
            except BaseException as exc:  # surfaced to the test below
                errors.append(exc)

        def reconnects() -> list[logging.LogRecord]:
            return [r for r in caplog.records if getattr(r, "event", None) == "reconnect"]

        def filed(mails: list[Mail], after: str) -> None:
            wait_until(
                lambda: all(bench.places()[0].get(m.message_id) == [m.destination] for m in mails),
                15,
                f"new mail filed after {after}",
            )

        def reconnected(before: int, after: str) -> list[logging.LogRecord]:
            wait_until(lambda: len(reconnects()) > before, 10, f"a reconnect after {after}")
            return reconnects()[before:]

        # The answer to the first MOVE of a pass is cut off: the next pass reconciles.
        cut_move = {"armed": False}
        move = ImapMailbox.move

        def move_and_maybe_cut(self: ImapMailbox, uids: Sequence[int], folder: str) -> MoveResult:
            if cut_move["armed"]:
                cut_move["armed"] = False
                proxy.cut_after(1, "down")
            return move(self, uids, folder)

        monkeypatch.setattr(ImapMailbox, "move", move_and_maybe_cut)
        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            assert proxy.wait_for(2)  # the first run's connection, then the loop's
            filed(bench.deliver(3, moving=True), "start")

            before = len(reconnects())
            assert proxy.wait_quiet(0.3), "never idle"
            assert proxy.reset_all() == 1
            assert [r.delay for r in reconnected(before, "a reset")] == [1.0]  # type: ignore[attr-defined]
            filed(bench.deliver(3, moving=True), "a reset")

            before = len(reconnects())
            server.restart()
            reconnected(before, "a restart")
            filed(bench.deliver(3, moving=True), "a restart")

            # Down for a while, and mail arrives meanwhile: the retries wait 1 s, then twice as
            # long each time up to max_backoff, each one logged; then a normal sync files it.
            before = len(reconnects())
            with server.stopped():
                mails = bench.deliver(3, moving=True)
                wait_until(lambda: len(reconnects()) >= before + 3, 15, "retries while down")
            filed(mails, "the server came back")
            delays = [r.delay for r in reconnects()[before:]]  # type: ignore[attr-defined]
            assert delays[:3] == [1.0, 2.0, 2.0], delays
            # (Through the proxy a refused connection shows as one reset at once.)
            assert all("while connecting" in r.getMessage() for r in reconnects()[before + 1 :])

            before = len(reconnects())
            cut_move["armed"] = True
            mails = bench.deliver(3, moving=True)
            lost = reconnected(before, "a cut MOVE")
            assert "while moving" in lost[0].getMessage() and lost[0].delay == 1.0  # type: ignore[attr-defined]
            filed(mails, "a cut MOVE")
            wait_until(lambda: bench.intents() == 0, 5, "the cut MOVE's intents settled")

            # A connection that goes silent while idling (nothing is reset, nothing arrives).
            # Idling for sure: the loop's pass after reconnecting may still be under way, and a
            # command (not DONE) on a stalled connection waits out the 120 s read timeout.
            before = len(reconnects())
            assert proxy.wait_quiet(0.3), "never idle"
            proxy.stall()
            stalled = time.monotonic()
            lost = reconnected(before, "a stall")
            assert time.monotonic() - stalled < 2 + 2 + 2  # idle refresh + timeout + slack
            assert "timed out" in lost[0].getMessage() and lost[0].delay == 1.0  # type: ignore[attr-defined]
            filed(bench.deliver(3, moving=True), "a stall")
            assert all("reconnecting in" in r.getMessage() for r in reconnects())
        finally:
            stop.set()
            thread.join(timeout=10)
        assert not thread.is_alive(), "run_forever did not stop within 10 s of the stop request"
        assert not errors, errors
        bench.check("after run_forever")


# -- SIGTERM and SIGINT -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_finishes_the_batch_and_exits_0(
    signum: signal.Signals,
    dovecot: DovecotServer,
    buyer: sample.SampleMailbox,
    model_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = dovecot.new_account(f"signal-{signum.name.lower()}")
    bench = make_bench(account, buyer, model_cache, tmp_path, monkeypatch, batch_size=5)
    assert bench.config.path is not None
    proc = subprocess.Popen(
        [sys.executable, "-m", "triage", "--config", str(bench.config.path), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log: list[str] = []
    working = threading.Event()

    def read_log() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line)
            if "batch of" in line:
                working.set()

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    try:
        assert proc.stdout is not None
        # Printed once the signal handlers are in place.
        assert proc.stdout.readline().startswith("Watching INBOX"), "".join(log)
        bench.deliver(300)
        assert working.wait(15), "".join(log)
        proc.send_signal(signum)
        sent = time.monotonic()
        rc = proc.wait(timeout=10)
        elapsed = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(5)
    stdout = proc.stdout.read()
    text = "".join(log)
    assert rc == 0, text
    assert elapsed < 3, f"took {elapsed:.1f} s to stop"
    assert "Stopped." in stdout and "Traceback" not in text
    assert f"{signum.name} received" in text
    # It stopped between batches, before the rest: nothing half done, the rest left for later.
    assert re.search(r"stopping: [0-9]+ of [0-9]+ new messages left", text), text
    with Store.open(bench.db) as store:
        runs = store.runs(bench.config.account().name, limit=1)
        assert store.filings(bench.config.account().name, state=INTENT) == []
    assert runs[0].status == "stopped"
    places, _flags = bench.places()
    assert all(len(folders) == 1 for folders in places.values())
    complete_and_check(bench, 0, f"after {signum.name}")

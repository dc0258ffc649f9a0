"""The short form of benchmarks/faults: randomized trials of every kind of fault against a real
Dovecot, and not one invariant violation; before them, the bugs those trials found, each
replayed at the exact moment it needs (on the same labs, still fresh: file order matters).

The machinery, and what each trial checks, is in tests/faultlab.py: where a random fault lands
depends on timing, and the invariants must hold wherever it lands.
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import imapclient
import pytest
from dovecot import DovecotServer
from faultlab import (
    INBOX,
    KILL,
    KILLED,
    KINDS,
    OVERQUOTA,
    QUOTA,
    RESET,
    FaultLab,
    Rounds,
    Tally,
    Trial,
    run_trials,
)
from imapclient.exceptions import IMAPClientError
from tcpproxy import TcpProxy

from triage import engine, sample
from triage.mailbox.base import FolderState
from triage.mailbox.imap import ImapMailbox
from triage.store import INTERRUPTED, VANISHED, Filing, Store

SEED = 20261123


def lab_for(
    tmp_path_factory: pytest.TempPathFactory,
    buyer: sample.SampleMailbox,
    model_cache: Path,
    *,
    move: bool,
) -> Iterator[FaultLab]:
    workdir = tmp_path_factory.mktemp("move" if move else "nomove")
    with FaultLab(
        workdir, buyer, messages=1000, move=move, deliveries=(10, 40), model_from=model_cache
    ) as lab:
        if not (model_cache / "current").exists():  # trained here: the other tests can use it
            shutil.copytree(lab.model_dir, model_cache, dirs_exist_ok=True)
        yield lab


@pytest.fixture(scope="module")
def move_lab(
    tmp_path_factory: pytest.TempPathFactory, buyer: sample.SampleMailbox, model_cache: Path
) -> Iterator[FaultLab]:
    """A lab on a Dovecot with MOVE (its trials and checks carry on from test to test)."""
    yield from lab_for(tmp_path_factory, buyer, model_cache, move=True)


@pytest.fixture(scope="module")
def nomove_lab(
    tmp_path_factory: pytest.TempPathFactory, buyer: sample.SampleMailbox, model_cache: Path
) -> Iterator[FaultLab]:
    """A lab on a Dovecot without MOVE: triage copies, flags \\Deleted and expunges."""
    yield from lab_for(tmp_path_factory, buyer, model_cache, move=False)


# -- what the trials found ------------------------------------------------------------------------


def killed_at(lab: FaultLab, point: str, count: int = 60) -> list[str]:
    """Deliver `count` messages and run `triage run --once` until it kills itself at `point`
    (see faultlab.FORK_SERVER); returns the destinations it left unsettled."""
    assert lab.runs is not None
    lab.deliver(random.Random(point), count)
    lab.runs.start("run", "--once", kill_at=point)
    finished = lab.runs.wait()
    assert finished is not None and finished.code == KILLED, finished
    lab.sessions_gone()
    pending = lab.pending_destinations()
    assert pending
    return pending


def next_run_and_check(lab: FaultLab, what: str) -> Trial:
    trial = Trial(0, what, lab.server_name)
    lab.run_once(trial, allowed=(0,))
    trial.violations += lab.check()
    assert not trial.violations, "\n".join(trial.violations)
    return trial


def test_unsettled_filings_are_found_in_an_inbox_whose_uidvalidity_changed(
    move_lab: FaultLab,
) -> None:
    """Killed after recording its intents and before moving; then the inbox's UIDVALIDITY
    changes. The messages never left the inbox: the store must say interrupted, not vanished
    (it did: old UIDs were the only way it looked for them in the source)."""
    before = {f.id for f in filings(move_lab)}
    killed_at(move_lab, "triage.store:Store.add_intents:after:1")
    move_lab.reset_uidvalidity(INBOX, random.Random(1), renumber=False)
    next_run_and_check(move_lab, "inbox UIDVALIDITY reset")
    settled = Counter(f.state for f in filings(move_lab) if f.id not in before)
    assert settled[INTERRUPTED] and not settled[VANISHED], settled


@pytest.mark.parametrize("nth", [1, 2], ids=["learning", "filing"])
def test_a_folder_deleted_between_listing_and_status_does_not_stop_the_run(
    move_lab: FaultLab, monkeypatch: pytest.MonkeyPatch, nth: int
) -> None:
    """The buyer deletes the generic bucket right before triage's STATUS of it: the one that
    looks for the buyer's moves (1st), or the one before filing into it (2nd). The refusal
    stopped the run (and ended `triage run` for good); now the folder is skipped, or made
    anew and filed into."""
    assert move_lab.config is not None
    folder = "Vendors/Generic"
    calls: list[str] = []
    status = ImapMailbox.status

    def status_after_the_buyer(self: ImapMailbox, name: str) -> FolderState:
        if name == folder:
            calls.append(name)
            if len(calls) == nth:
                move_lab._deleted = (folder, move_lab.delete_folder(folder))
        return status(self, name)

    fresh = move_lab.deliver(random.Random(nth), 60)
    monkeypatch.setattr(ImapMailbox, "status", status_after_the_buyer)
    report = engine.run_once(move_lab.config, move_lab.config.account())
    monkeypatch.undo()
    assert len(calls) > nth and report.read == len(fresh)
    assert folder in move_lab.folders()
    violations = move_lab.check()
    assert not violations, "\n".join(violations)


def test_a_copy_left_in_a_folder_the_buyer_renamed_is_not_filed_twice(
    nomove_lab: FaultLab,
) -> None:
    """Without MOVE, killed between a COPY and its EXPUNGE: the copy is in the destination,
    the original still in the inbox. The buyer renames the destination before the next run,
    which then found the copy nowhere and filed the original again (twice in one folder)."""
    killed_at(nomove_lab, "triage.mailbox.imap:ImapMailbox._expunge_exactly:before:1")
    doubled = nomove_lab.doubled_folders()
    assert len(doubled) == 1
    nomove_lab.rename_folder(doubled[0], f"Old/{doubled[0].rsplit('/', 1)[-1]} renamed")
    next_run_and_check(nomove_lab, "copy in a renamed folder")


def filings(lab: FaultLab) -> Sequence[Filing]:
    with Store.open(lab.db) as store:
        return store.filings("work")


# -- the trials --------------------------------------------------------------------------------


@pytest.mark.slow
def test_randomized_fault_trials_find_no_invariant_violation(
    move_lab: FaultLab, nomove_lab: FaultLab
) -> None:
    """Two rounds of every kind on the MOVE server; on the other, the kinds where COPY +
    EXPUNGE differs (Dovecot's own quota refuses the COPY there)."""
    tally = Tally()
    run_trials(move_lab, 2 * len(KINDS), Rounds(random.Random(SEED)), tally)
    run_trials(nomove_lab, 3, Rounds(random.Random(SEED), [QUOTA, KILL, RESET]), tally)
    kinds = Counter(trial.kind for trial in tally.trials)
    assert kinds == {**dict.fromkeys(KINDS, 2), QUOTA: 3, KILL: 3, RESET: 3}
    assert not tally.violations, "\n".join(tally.violations)


# -- the lab's own tools ------------------------------------------------------------------------


def test_a_full_folder_refuses_copy_and_append_but_not_move_and_the_proxy_can() -> None:
    """DovecotServer.set_quota is real Dovecot quota; the MOVE it lets through, TcpProxy.refuse
    answers the way Dovecot answers COPY, without the server seeing it."""
    with DovecotServer(quota=True) as server, TcpProxy(server.port) as proxy:
        account = server.new_account("quota")
        server.seed(account.user, INBOX, [b"Subject: a\r\n\r\nbody\r\n"] * 3)
        server.seed(account.user, "Vendors/Full Folder", [b"Subject: b\r\n\r\nbody\r\n"])
        server.set_quota(account.user, "Vendors/Full Folder")
        proxy.refuse(rb'\S+ UID MOVE [0-9:,]+ "Vendors/Full Folder"\r\n$', OVERQUOTA)
        client = imapclient.IMAPClient(account.host, proxy.port, ssl=False)
        client.login(account.user, account.password)
        client.select_folder(INBOX)
        with pytest.raises(IMAPClientError, match="OVERQUOTA"):
            client.copy([1], "Vendors/Full Folder")
        with pytest.raises(IMAPClientError, match="OVERQUOTA"):
            client.append("Vendors/Full Folder", b"Subject: c\r\n\r\nbody\r\n")
        with pytest.raises(IMAPClientError, match="OVERQUOTA"):
            client.move([1], "Vendors/Full Folder")
        # A literal that looks like the refused command is data, and passes.
        assert client.append("Archive", b'x UID MOVE 1 "Vendors/Full Folder"\r\n\r\n')
        assert proxy.refusals == 1
        proxy.refuse(None)
        client.move([1], "Vendors/Full Folder")  # Dovecot itself lets a MOVE through
        client.logout()
        server.set_quota(account.user)  # lifted, for the sessions that log in from now on
        client = imapclient.IMAPClient(account.host, proxy.port, ssl=False)
        client.login(account.user, account.password)
        client.select_folder(INBOX)
        client.copy([2], "Vendors/Full Folder")
        assert client.folder_status("Vendors/Full Folder", [b"MESSAGES"])[b"MESSAGES"] == 3
        client.logout()

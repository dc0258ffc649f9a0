"""`triage run` against a real Dovecot: filing, dry run, flags, UIDVALIDITY, undo, the lock."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from dovecot import ImapAccount
from helpers import census, message_id_of, seed_history, trained_config, where_is

from triage import engine, sample
from triage.cli import cli
from triage.config import Config, load_config
from triage.errors import StoreError
from triage.mailbox.base import MoveResult
from triage.mailbox.imap import ImapMailbox
from triage.message import parse
from triage.store import AccountLock


@pytest.fixture
def setup(trained_setup: Config) -> Config:
    return trained_setup


def deliver_new_week(account: ImapAccount, buyer: sample.SampleMailbox) -> None:
    account.server.seed(account.user, "INBOX", [m.data for m in buyer.new_week])


def test_first_run_leaves_existing_mail_then_files_new_mail(
    setup: Config, imap_account: ImapAccount, buyer: sample.SampleMailbox
) -> None:
    account = setup.account()
    before = where_is(imap_account)
    first = engine.run_once(setup, account)
    assert first.read == 0 and "first run" in first.note
    assert where_is(imap_account) == before

    deliver_new_week(imap_account, buyer)
    report = engine.run_once(setup, account)
    assert report.read == len(buyer.new_week)
    assert report.moved == sum(n for k, n in report.counts.items() if not k.startswith("stays"))
    places = where_is(imap_account)
    truth = {message_id_of(m.data): m.folder for m in buyer.new_week}
    assert set(truth) <= set(places)
    # The sample's "INBOX" and "Archive" mail both belong in the inbox for new mail.
    expected = {mid: ("INBOX" if f in ("INBOX", "Archive") else f) for mid, f in truth.items()}
    right = sum(places[mid] == folder for mid, folder in expected.items())
    assert right / len(expected) >= 0.8, f"only {right} of {len(expected)} filed right"
    partner_to_generic = [
        mid
        for mid, f in expected.items()
        if f.startswith("Vendors/") and f != "Vendors/Generic" and places[mid] == "Vendors/Generic"
    ]
    assert len(partner_to_generic) <= 2
    # Never marked read: the new week is unread wherever it went.
    flags = {mid: f for items in census(imap_account).values() for mid, f in items}
    assert not any(b"\\Seen" in flags[mid] for mid in truth)
    # A second pass finds nothing new: one round of search, no refiling.
    again = engine.run_once(setup, account)
    assert again.read == 0 and again.moved == 0
    assert where_is(imap_account) == places


def test_dry_run_changes_nothing(
    setup: Config, imap_account: ImapAccount, buyer: sample.SampleMailbox
) -> None:
    engine.run_once(setup, setup.account())
    deliver_new_week(imap_account, buyer)
    before = census(imap_account)
    result = CliRunner().invoke(cli, ["--config", str(setup.path), "run", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"Dry run: {len(buyer.new_week)} new messages; nothing was changed." in result.output
    assert "Vendors/" in result.output
    assert census(imap_account) == before
    # The dry run did not move the sync mark: a real run still sees the whole week.
    assert engine.run_once(setup, setup.account()).read == len(buyer.new_week)


def test_backfill_files_what_was_there_before(
    setup: Config, imap_account: ImapAccount, buyer: sample.SampleMailbox
) -> None:
    deliver_new_week(imap_account, buyer)
    assert engine.run_once(setup, setup.account()).read == 0  # first run: left alone
    report = engine.run_once(setup, setup.account(), backfill=True)
    inbox_history = sum(1 for m in buyer.history if m.folder == "INBOX")
    assert report.read == len(buyer.new_week) + inbox_history
    assert report.moved > len(buyer.new_week) // 2
    where_is(imap_account)


def test_uidvalidity_change_resyncs_without_refiling(
    setup: Config, imap_account: ImapAccount, buyer: sample.SampleMailbox
) -> None:
    account = setup.account()
    engine.run_once(setup, account)
    half = len(buyer.new_week) // 2
    imap_account.server.seed(imap_account.user, "INBOX", [m.data for m in buyer.new_week[:half]])
    engine.run_once(setup, account)
    placed = where_is(imap_account)
    # The buyer moved one filed message back to the inbox by hand before the reset.
    # Then the server renumbers the inbox (a restore, a migration).
    server = imap_account.server
    server._doveadm("mailbox", "update", "-u", imap_account.user, "--uid-validity", "777", "INBOX")
    imap_account.server.seed(imap_account.user, "INBOX", [m.data for m in buyer.new_week[half:]])
    report = engine.run_once(setup, account)
    assert "UIDVALIDITY changed" in report.note
    assert report.read == len(buyer.new_week) - half
    after = where_is(imap_account)
    assert all(after[mid] == folder for mid, folder in placed.items())


def test_undo_moves_back_and_is_not_refiled(
    setup: Config, imap_account: ImapAccount, buyer: sample.SampleMailbox
) -> None:
    account = setup.account()
    engine.run_once(setup, account)
    deliver_new_week(imap_account, buyer)
    filed = engine.run_once(setup, account)
    assert filed.moved > 0
    result = CliRunner().invoke(cli, ["--config", str(setup.path), "undo"])
    assert result.exit_code == 0, result.output
    assert f"Run {filed.run_id}: {filed.moved} messages moved back" in result.output
    places = where_is(imap_account)
    new_ids = {message_id_of(m.data) for m in buyer.new_week}
    assert all(places[mid] == "INBOX" for mid in new_ids)
    # The next run sees the moved-back ones under new UIDs, but never files them again.
    again = engine.run_once(setup, account)
    assert again.read == filed.moved and again.moved == 0
    assert again.counts == {"stays in INBOX": filed.moved}


def test_undo_leaves_what_the_buyer_moved_since(
    setup: Config, imap_account: ImapAccount, buyer: sample.SampleMailbox
) -> None:
    account = setup.account()
    engine.run_once(setup, account)
    deliver_new_week(imap_account, buyer)
    filed = engine.run_once(setup, account)
    report = engine.undo(setup, account, filed.run_id)
    assert report.moved_back == filed.moved and report.not_found == 0
    second = engine.undo(setup, account, filed.run_id)
    assert second.moved_back == 0


def test_two_runs_on_one_account_refuse_to_race(setup: Config) -> None:
    state = setup.state_dir / "locks"
    holder = subprocess.Popen(
        [
            "python",
            "-c",
            "import sys, time\n"
            "from pathlib import Path\nfrom triage.store import AccountLock\n"
            f"lock = AccountLock(Path({str(state)!r}), 'work'); lock.acquire()\n"
            "print('locked', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError, match=f"another triage process \\(pid {holder.pid}\\)"):
            engine.run_once(setup, setup.account())
        result = CliRunner().invoke(cli, ["--config", str(setup.path), "run", "--once"])
        assert result.exit_code == 5
        assert f"pid {holder.pid}" in result.output
    finally:
        holder.kill()
        holder.wait()
    # The lock dies with its process (even kill -9): the next run goes ahead.
    with AccountLock(state, "work"):
        pass
    assert engine.run_once(setup, setup.account()).run_id is not None


def test_status_reports_runs_and_counts(
    setup: Config, imap_account: ImapAccount, buyer: sample.SampleMailbox
) -> None:
    engine.run_once(setup, setup.account())
    deliver_new_week(imap_account, buyer)
    engine.run_once(setup, setup.account())
    result = CliRunner().invoke(cli, ["--config", str(setup.path), "status"])
    assert result.exit_code == 0, result.output
    assert "last run: #2 run" in result.output and "ok" in result.output
    assert "Vendors/Generic" in result.output
    assert "model: 20" in result.output


def test_run_forever_files_mail_as_it_arrives(
    setup: Config, imap_account: ImapAccount, buyer: sample.SampleMailbox
) -> None:
    engine.run_once(setup, setup.account())  # the first run sets the mark
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            engine.run_forever(setup, setup.account(), stop=stop.is_set)
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        time.sleep(1.0)  # in IDLE by now
        invoice = next(
            m for m in buyer.new_week if m.kind == "invoice" and m.folder != "Vendors/Generic"
        )
        delivered = time.monotonic()
        imap_account.server.seed(imap_account.user, "INBOX", [invoice.data])
        target = message_id_of(invoice.data)
        while time.monotonic() - delivered < 15:
            if where_is(imap_account).get(target, "INBOX") != "INBOX":
                break
            time.sleep(0.1)
        assert where_is(imap_account)[target] == invoice.folder
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive(), "run_forever did not stop within 10 s of the stop request"
    assert not errors


def test_mail_arriving_during_a_pass_is_filed_at_once(
    setup: Config,
    imap_account: ImapAccount,
    buyer: sample.SampleMailbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine.run_once(setup, setup.account())
    partner = [
        m
        for m in buyer.new_week
        if m.kind in ("invoice", "shipment", "delivery") and m.folder != "Vendors/Generic"
    ]
    first, late = partner[0], partner[1]
    real_move = ImapMailbox.move
    delivered: list[float] = []

    # Delivered the way a server's delivery agent does it (through the server, so that its
    # index and notifications see it), while the pass is busy moving the first message.
    deliverer = ImapMailbox(
        imap_account.host,
        imap_account.user,
        lambda: imap_account.password,
        port=imap_account.port,
        security="plain",
    )
    deliverer.connect()

    def move_then_deliver(self: ImapMailbox, uids: Sequence[int], destination: str) -> MoveResult:
        result = real_move(self, uids, destination)
        if not delivered:
            deliverer.append("INBOX", late.data)
            delivered.append(time.monotonic())
        return result

    monkeypatch.setattr(ImapMailbox, "move", move_then_deliver)
    stop = threading.Event()
    thread = threading.Thread(
        target=lambda: engine.run_forever(setup, setup.account(), stop=stop.is_set)
    )
    thread.start()
    try:
        time.sleep(1.0)
        imap_account.server.seed(imap_account.user, "INBOX", [first.data])
        target = message_id_of(late.data)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and where_is(imap_account).get(target) != late.folder:
            time.sleep(0.1)
        assert where_is(imap_account).get(target) == late.folder
        assert delivered and time.monotonic() - delivered[0] < 5
    finally:
        stop.set()
        thread.join(timeout=10)
        deliverer.close()


def test_moves_are_sent_in_rounds(
    setup: Config,
    imap_account: ImapAccount,
    buyer: sample.SampleMailbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert setup.path is not None
    text = setup.path.read_text().replace("move_batch = 1\n", "move_batch = 10000\n")
    setup.path.write_text(text)
    config = load_config(setup.path)
    engine.run_once(config, config.account())
    deliver_new_week(imap_account, buyer)
    calls: list[tuple[int, str]] = []
    real_move = ImapMailbox.move

    def counting_move(self: ImapMailbox, uids: Sequence[int], destination: str) -> MoveResult:
        calls.append((len(uids), destination))
        return real_move(self, uids, destination)

    monkeypatch.setattr(ImapMailbox, "move", counting_move)
    report = engine.run_once(config, config.account())
    # batch_size 50 reads the week in two batches; the moves go out once per destination.
    assert report.read == len(buyer.new_week) > 50
    destinations = [d for _, d in calls]
    assert len(destinations) == len(set(destinations))
    assert sum(n for n, _ in calls) == report.moved
    where_is(imap_account)


def test_a_rule_files_into_a_folder_it_creates(
    imap_account: ImapAccount,
    buyer: sample.SampleMailbox,
    model_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRIAGE_TEST_PASSWORD", imap_account.password)
    seed_history(imap_account, buyer)
    pitch = next(m for m in buyer.new_week if m.kind == "cold_pitch")
    message_id = message_id_of(pitch.data)
    sender = parse(pitch.data).sender
    rule = (
        f'\n[[accounts.rules]]\nfrom = "@{sender.rpartition("@")[2]}"\n'
        'folder = "Vendors/Café Nouveau"\n'
    )
    config = trained_config(tmp_path, imap_account, buyer, model_cache, extra=rule)
    engine.run_once(config, config.account())
    imap_account.server.seed(imap_account.user, "INBOX", [pitch.data])
    report = engine.run_once(config, config.account())
    assert report.counts == {"Vendors/Café Nouveau": 1}
    assert where_is(imap_account)[message_id] == "Vendors/Café Nouveau"

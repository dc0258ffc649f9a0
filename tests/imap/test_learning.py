"""Learning from the buyer against a real Dovecot: a second connection plays the buyer."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
from click.testing import CliRunner
from dovecot import ImapAccount
from helpers import message_id_of, where_is

from triage import engine, sample
from triage.cli import cli
from triage.config import Config, load_config
from triage.learn import RetrainPolicy
from triage.mailbox.imap import ImapMailbox
from triage.message import parse
from triage.store import Store


@pytest.fixture
def setup(trained_setup: Config) -> Config:
    config = trained_setup
    engine.train(config, config.account())  # also stores the examples a retrain starts from
    engine.run_once(config, config.account())  # first run: marks set, nothing filed
    return config


def the_buyer(account: ImapAccount) -> ImapMailbox:
    box = ImapMailbox(
        account.host, account.user, lambda: account.password, port=account.port, security="plain"
    )
    box.connect()
    return box


def again(data: bytes, n: int) -> bytes:
    """The same sender writes once more: a new message with its own Message-ID."""
    return re.sub(rb"Message-ID: <([^>]*)>", rb"Message-ID: <again%d.\1>" % n, data, count=1)


def move_by_id(box: ImapMailbox, source: str, message_id: str, destination: str) -> None:
    box.select(source)
    [uid] = box.search_message_id(message_id)
    box.create_folder(destination)
    box.select(source)
    box.move([uid], destination)


def test_a_correction_applies_at_once_and_moving_back_makes_the_sender_stay(
    setup: Config, imap_account: ImapAccount, buyer: sample.SampleMailbox
) -> None:
    account = setup.account()
    pitch = next(m for m in buyer.new_week if m.kind == "cold_pitch")
    sender = parse(pitch.data).sender
    imap_account.server.seed(imap_account.user, "INBOX", [pitch.data])
    first = engine.run_once(setup, account)
    assert first.counts == {"Vendors/Generic": 1}

    # The buyer likes this vendor: moves its mail out of the generic bucket into a new
    # partner folder of its own.
    buyer_box = the_buyer(imap_account)
    move_by_id(buyer_box, "Vendors/Generic", message_id_of(pitch.data), "Vendors/Newpartner")
    imap_account.server.seed(imap_account.user, "INBOX", [again(pitch.data, 1)])
    second = engine.run_once(setup, account)
    assert second.learnt == {"correction": 1}
    assert second.counts == {"Vendors/Newpartner": 1}
    assert where_is(imap_account)[message_id_of(again(pitch.data, 1))] == "Vendors/Newpartner"
    with Store.open(setup.state_dir / "triage.db") as store:
        assert store.corrections(account.name) == [(sender, "Vendors/Newpartner")]

    # Then the buyer changes their mind: moves one back to the inbox. The moved-back message
    # stays, and so does the sender's next message.
    move_by_id(buyer_box, "Vendors/Newpartner", message_id_of(again(pitch.data, 1)), "INBOX")
    third = engine.run_once(setup, account)
    assert third.counts == {"stays in INBOX": 1}
    imap_account.server.seed(imap_account.user, "INBOX", [again(pitch.data, 2)])
    fourth = engine.run_once(setup, account)
    assert fourth.counts == {"stays in INBOX": 1}
    places = where_is(imap_account)
    assert places[message_id_of(again(pitch.data, 1))] == "INBOX"
    assert places[message_id_of(again(pitch.data, 2))] == "INBOX"
    buyer_box.close()

    # A retrain learns from the corrections; those the new model gets right by itself leave
    # sender memory, the others stay in it.
    with Store.open(setup.state_dir / "triage.db") as store:
        before = store.corrections(account.name)
    report = engine.retrain(setup, account)
    assert report.corrections == 2
    with Store.open(setup.state_dir / "triage.db") as store:
        after = store.corrections(account.name)
    assert set(after) <= set(before)
    model = engine.load_model(setup, account)
    latest = parse(again(pitch.data, 1))
    with Store.open(setup.state_dir / "triage.db") as store:
        remembered = engine.sender_memory(store, account)
    predicted = model.predict_labels([latest])[0]
    if predicted == engine.KEEP_LABEL:
        assert remembered.folder_for(sender) is None  # settled: the model handles it
    else:
        assert remembered.folder_for(sender) == "INBOX"


def test_hand_filed_mail_becomes_an_example_and_retraining_uses_it(
    setup: Config, imap_account: ImapAccount, buyer: sample.SampleMailbox
) -> None:
    account = setup.account()
    partner_mail = next(
        m
        for m in buyer.new_week
        if m.folder.startswith("Vendors/") and m.folder != "Vendors/Generic"
    )
    buyer_box = the_buyer(imap_account)
    buyer_box.append(partner_mail.folder, partner_mail.data)  # filed by hand (or a server rule)
    report = engine.run_once(setup, account)
    assert report.learnt == {"hand-filed": 1}
    # Triage's own filings into watched folders are not mistaken for the buyer's.
    others = [m.data for m in buyer.new_week if m is not partner_mail][:20]
    imap_account.server.seed(imap_account.user, "INBOX", others)
    filed = engine.run_once(setup, account).moved
    assert filed > 0
    assert engine.run_once(setup, account).learnt == {}

    with Store.open(setup.state_dir / "triage.db") as store:
        trained = sum(e.kind == "trained" for e in store.examples(account.name))
    retrained = engine.retrain(setup, account)
    assert retrained.promoted
    # What it trained on: the folders as read, the hand-filed message, and what it filed
    # (the buyer left it there).
    assert retrained.messages == trained + 1 + filed
    assert engine.current_model_path(setup, account) == retrained.path
    buyer_box.close()


def test_a_retrain_that_scores_worse_is_kept_aside(
    setup: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = setup.account()
    before = engine.current_model_path(setup, account)
    real_train = engine.TriageModel.train

    def worse(*args: object, **kwargs: object) -> engine.TriageModel:
        model = real_train(*args, **kwargs)  # type: ignore[arg-type]
        model.scores["holdout"]["accuracy"] = 0.10  # as if the new data confused it
        return model

    monkeypatch.setattr(engine.TriageModel, "train", worse)
    report = engine.retrain(setup, account, policy=RetrainPolicy(margin=0.02))
    assert not report.promoted
    assert report.path.parent.name == "aside" and report.path.exists()
    assert engine.current_model_path(setup, account) == before


def test_run_keeps_filing_while_it_retrains(
    setup: Config,
    imap_account: ImapAccount,
    buyer: sample.SampleMailbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = setup.account()
    training = threading.Event()
    release = threading.Event()
    real_retrain = engine.retrain

    def slow_retrain(config: Config, acc: object, **kwargs: object) -> engine.RetrainReport:
        training.set()
        release.wait(30)  # a long retrain on a big mailbox
        return real_retrain(config, account)

    monkeypatch.setattr(engine, "retrain", slow_retrain)
    monkeypatch.setattr(engine, "retrain_due", lambda config, acc: True)
    monkeypatch.setattr(engine, "LEARN_EVERY", 0.0)
    partner_mail = next(
        m
        for m in buyer.new_week
        if m.folder.startswith("Vendors/") and m.folder != "Vendors/Generic"
    )
    buyer_box = the_buyer(imap_account)
    buyer_box.append(partner_mail.folder, partner_mail.data)  # something to learn from
    buyer_box.close()
    stop = threading.Event()
    thread = threading.Thread(target=lambda: engine.run_forever(setup, account, stop=stop.is_set))
    thread.start()
    try:
        assert training.wait(15), "no retrain started"
        invoice = next(
            m for m in buyer.new_week if m.kind == "invoice" and m.folder != "Vendors/Generic"
        )
        # Delivered through the server (as its delivery agent does), so IDLE announces it.
        deliverer = the_buyer(imap_account)
        deliverer.append("INBOX", invoice.data)
        deliverer.close()
        target = message_id_of(invoice.data)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and where_is(imap_account).get(target) in (None, "INBOX"):
            time.sleep(0.1)
        assert where_is(imap_account)[target] == invoice.folder  # filed during the retrain
        assert not release.is_set()
    finally:
        release.set()
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()


def test_run_once_retrains_after_retrain_after_corrections(
    setup: Config, imap_account: ImapAccount, buyer: sample.SampleMailbox
) -> None:
    assert setup.path is not None
    setup.path.write_text(
        setup.path.read_text().replace("move_batch = 1\n", "move_batch = 1\nretrain_after = 1\n")
    )
    config = load_config(setup.path)
    account = config.account()
    pitch = next(m for m in buyer.new_week if m.kind == "cold_pitch")
    imap_account.server.seed(imap_account.user, "INBOX", [pitch.data])
    assert engine.run_once(config, account).retrain is None  # nothing corrected yet
    buyer_box = the_buyer(imap_account)
    move_by_id(buyer_box, "Vendors/Generic", message_id_of(pitch.data), "Vendors/Newpartner")
    buyer_box.close()
    before = engine.current_model_path(config, account)
    result = CliRunner().invoke(cli, ["--config", str(setup.path), "run", "--once"])
    assert result.exit_code == 0, result.output
    assert "Learnt from your moves: 1 correction" in result.output
    assert "Retrained on" in result.output and "now in use" in result.output
    assert engine.current_model_path(config, account) != before
    assert (
        "Vendors/Newpartner"
        in json.loads(engine.current_model_path(config, account).with_suffix(".json").read_text())[
            "classes"
        ]
    )

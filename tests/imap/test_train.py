"""`triage train` and `triage explain` on a real Dovecot mailbox seeded with the sample buyer."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner
from dovecot import ImapAccount

from triage import sample
from triage.cli import cli
from triage.mailbox.imap import ImapMailbox


@pytest.fixture(scope="module")
def buyer() -> sample.SampleMailbox:
    return sample.build(seed=11)


def test_train_and_explain_over_imap(
    imap_account: ImapAccount,
    buyer: sample.SampleMailbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    by_folder: dict[str, list[bytes]] = defaultdict(list)
    for message in buyer.history:
        by_folder[message.folder].append(message.data)
    for folder, messages in by_folder.items():
        imap_account.server.seed(imap_account.user, folder, messages, flags="S")
    imap_account.server.seed(imap_account.user, "INBOX", [m.data for m in buyer.new_week])
    config = tmp_path / "config.toml"
    config.write_text(
        f'[triage]\nstate_dir = "{tmp_path / "state"}"\n'
        "[[accounts]]\n"
        'name = "work"\nbackend = "imap"\n'
        f'host = "{imap_account.host}"\nport = {imap_account.port}\n'
        f'user = "{imap_account.user}"\nsecurity = "plain"\n'
        'password_env = "TRIAGE_TEST_PASSWORD"\n'
        f'own_domains = ["{buyer.buyer.domain}"]\n'
        f'own_addresses = ["{buyer.buyer.address}"]\n'
    )
    monkeypatch.setenv("TRIAGE_TEST_PASSWORD", imap_account.password)
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(config), "train"])
    assert result.exit_code == 0, result.output
    assert "Holdout" in result.output and "accuracy" in result.output
    assert "partner mail sent to the generic bucket" in result.output
    models = sorted((tmp_path / "state" / "models" / "work").glob("*.joblib"))
    assert len(models) == 1
    sidecar = json.loads(models[0].with_suffix(".json").read_text())
    partners = {m.folder for m in buyer.history if m.folder.startswith("Vendors/")}
    assert partners <= set(sidecar["classes"])
    assert sidecar["scores"]["holdout"]["accuracy"] > 0.8

    # Training read the mail with BODY.PEEK: the new week in the inbox is still unread.
    box = ImapMailbox(
        imap_account.host,
        imap_account.user,
        lambda: imap_account.password,
        port=imap_account.port,
        security="plain",
    )
    with box:
        box.select("INBOX")
        uids = box.uids_above(0)
        fetched = list(box.fetch(uids, max_bytes=1024))
    new_week = [m for m in fetched if not m.seen]
    assert len(new_week) == len(buyer.new_week)
    uids = [m.uid for m in new_week]

    partner_mail = next(
        i
        for i, m in enumerate(buyer.new_week)
        if m.folder.startswith("Vendors/") and m.folder != "Vendors/Generic" and m.kind == "invoice"
    )
    result = runner.invoke(
        cli,
        ["--config", str(config), "explain", "--folder", "INBOX", "--uid", str(uids[partner_mail])],
    )
    assert result.exit_code == 0, result.output
    assert f"Predicted: {buyer.new_week[partner_mail].folder}" in result.output
    assert "Features that pushed it there:" in result.output
    assert "from" in result.output


def test_explain_without_a_model_says_to_train(tmp_path: Path) -> None:
    mail = tmp_path / "Mail"
    (mail / "cur").mkdir(parents=True)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[triage]\nstate_dir = "{tmp_path}/state"\n[[accounts]]\nname = "x"\n'
        f'backend = "maildir"\npath = "{mail}"\n'
    )
    message = tmp_path / "m.eml"
    message.write_bytes(b"From: a@b.example\r\nSubject: hi\r\n\r\nbody\r\n")
    result = CliRunner().invoke(cli, ["--config", str(config), "explain", str(message)])
    assert result.exit_code == 4
    assert "triage train" in result.output

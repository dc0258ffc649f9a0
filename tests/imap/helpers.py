"""Shared helpers for the IMAP tests: a sample mailbox on Dovecot, configs, and a census."""

from __future__ import annotations

import shutil
from collections import Counter, defaultdict
from pathlib import Path

import imapclient
from dovecot import ImapAccount

from triage import engine, sample
from triage.config import Config, load_config


def seed_history(account: ImapAccount, buyer: sample.SampleMailbox) -> None:
    """The buyer's existing folders (read mail), as the sample has them."""
    by_folder: dict[str, list[bytes]] = defaultdict(list)
    for message in buyer.history:
        by_folder[message.folder].append(message.data)
    for folder, messages in by_folder.items():
        account.server.seed(account.user, folder, messages, flags="S")


def write_config(
    tmp_path: Path, account: ImapAccount, buyer: sample.SampleMailbox, extra: str = ""
) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[triage]\nstate_dir = "{tmp_path / "state"}"\n'
        "[run]\nbatch_size = 50\nmove_batch = 1\n"
        "[[accounts]]\n"
        'name = "work"\nbackend = "imap"\n'
        f'host = "{account.host}"\nport = {account.port}\n'
        f'user = "{account.user}"\nsecurity = "plain"\n'
        'password_env = "TRIAGE_TEST_PASSWORD"\n'
        f'own_domains = ["{buyer.buyer.domain}"]\n'
        f'own_addresses = ["{buyer.buyer.address}"]\n' + extra
    )
    return path


def trained_config(
    tmp_path: Path,
    account: ImapAccount,
    buyer: sample.SampleMailbox,
    model_cache: Path,
    extra: str = "",
) -> Config:
    """A config whose state dir holds a model trained on `buyer`'s history (trained once)."""
    config = load_config(write_config(tmp_path, account, buyer, extra))
    target = engine.model_dir(config, config.account())
    if not (model_cache / "current").exists():
        engine.train(config, config.account())
        shutil.copytree(target, model_cache, dirs_exist_ok=True)
    else:
        shutil.copytree(model_cache, target, dirs_exist_ok=True)
    return config


def census(account: ImapAccount) -> dict[str, list[tuple[str, frozenset[bytes]]]]:
    """Every message of the account, read with plain imapclient: folder -> [(Message-ID, flags)]."""
    client = imapclient.IMAPClient(account.host, account.port, ssl=False)
    client.login(account.user, account.password)
    found: dict[str, list[tuple[str, frozenset[bytes]]]] = {}
    try:
        for flags, _delim, name in client.list_folders():
            if b"\\Noselect" in flags:
                continue
            client.select_folder(name, readonly=True)
            uids = client.search("ALL")
            data = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]", "FLAGS"])
            found[name] = [
                (
                    v[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().split(":", 1)[1].strip(),
                    frozenset(v[b"FLAGS"]) - {b"\\Recent"},
                )
                for v in data.values()
            ]
    finally:
        client.logout()
    return found


def where_is(account: ImapAccount) -> dict[str, str]:
    """Message-ID -> folder; fails the test if any message exists twice."""
    places: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for folder, items in census(account).items():
        for message_id, _flags in items:
            counts[message_id] += 1
            places[message_id] = folder
    duplicates = [m for m, n in counts.items() if n > 1]
    assert not duplicates, f"messages exist more than once: {duplicates[:5]}"
    return places


def message_id_of(data: bytes) -> str:
    for line in data.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    raise AssertionError("sample message without Message-ID")

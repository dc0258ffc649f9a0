"""`triage demo`: the whole loop on a built-in sample mailbox, no server and no account needed.

It writes a realistic buyer mailbox as a local Maildir++ tree (months of mail already filed in
partner folders, the generic bucket and the archive), trains on those folders, lets a new week
of mail arrive in the inbox, files it with the same engine `triage run` uses, and scores the
result against where each message truly belongs.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

from triage import engine, sample
from triage.config import Config, parse_config
from triage.mailbox.base import message_id_from_header
from triage.mailbox.maildir import MaildirMailbox


@dataclass
class DemoReport:
    root: Path
    history: int
    partners: int
    train: engine.TrainReport
    run: engine.RunReport
    new_week: int
    correct: int
    partner_to_generic: int
    by_destination: dict[str, tuple[int, int]] = field(default_factory=dict)  # filed, right
    seconds: float = 0.0

    @property
    def accuracy(self) -> float:
        return self.correct / self.new_week if self.new_week else 0.0


def demo_config(root: Path, buyer: sample.Buyer) -> Config:
    mail = root / "Mail"
    text = (
        f'[triage]\nstate_dir = "{root / "state"}"\n'
        "[[accounts]]\n"
        'name = "demo"\nbackend = "maildir"\n'
        f'path = "{mail}"\n'
        f'own_domains = ["{buyer.domain}"]\n'
        f'own_addresses = ["{buyer.address}"]\n'
        f'own_names = ["{buyer.first_name}", "{buyer.name}"]\n'
    )
    return parse_config(text, source=str(root / "demo-config.toml"))


def expected_folder(message: sample.SampleMessage) -> str:
    """Where new mail belongs: archived mail is the kind that stays in the inbox."""
    return "INBOX" if message.folder in (sample.INBOX, sample.ARCHIVE) else message.folder


def run_demo(root: Path, seed: int = 7) -> DemoReport:
    started = time.monotonic()
    buyer = sample.build(seed=seed)
    mail = root / "Mail"
    sample.write_maildir(dataclasses.replace(buyer, new_week=()), mail)
    config = demo_config(root, buyer.buyer)
    account = config.account()
    trained = engine.train(config, account)
    engine.run_once(config, account)  # the first run leaves what is already there alone
    with MaildirMailbox(mail) as box:
        for message in buyer.new_week:
            box.append("INBOX", message.data, date=message.date)
    report = engine.run_once(config, account)
    placed = locate(mail)
    correct = 0
    partner_to_generic = 0
    by_destination: dict[str, list[int]] = {}
    for message in buyer.new_week:
        truth = expected_folder(message)
        where = placed.get(message_id_from_header(message.data), "?")
        right = where == truth
        correct += right
        row = by_destination.setdefault(where, [0, 0])
        row[0] += 1
        row[1] += right
        if (
            where == sample.GENERIC_FOLDER
            and truth.startswith(sample.VENDOR_PREFIX)
            and (truth != sample.GENERIC_FOLDER)
        ):
            partner_to_generic += 1
    return DemoReport(
        root=root,
        history=len(buyer.history),
        partners=len(buyer.partners),
        train=trained,
        run=report,
        new_week=len(buyer.new_week),
        correct=correct,
        partner_to_generic=partner_to_generic,
        by_destination={k: (v[0], v[1]) for k, v in sorted(by_destination.items())},
        seconds=time.monotonic() - started,
    )


def locate(mail: Path) -> dict[str, str]:
    """Message-ID -> folder for every message in the tree."""
    places: dict[str, str] = {}
    with MaildirMailbox(mail) as box:
        for folder in box.list_folders():
            if not folder.selectable:
                continue
            box.select(folder.name)
            for mid in box.fetch_message_ids(box.uids_above(0)).values():
                places[mid] = folder.name
    return places

"""`triage demo`: the whole loop on a built-in sample mailbox, no server and no account needed.

It writes a realistic buyer mailbox as a local Maildir++ tree (months of mail already filed in
partner folders, the generic bucket and the archive, and what the buyer sent), trains on those
folders, lets a new week of mail arrive in the inbox, files it with the same engine `triage run`
uses, scores the result against where each message truly belongs, then plays the buyer: two
messages are moved by hand, triage notices and retrains, and the week's digest is written.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from triage import engine, sample
from triage.config import Config, parse_config
from triage.mailbox.base import message_id_from_header
from triage.mailbox.maildir import MaildirMailbox
from triage.message import parse


@dataclass(frozen=True, slots=True)
class BuyerMove:
    """A message the demo's buyer moved by hand after triage filed it."""

    subject: str
    sender: str
    before: str
    after: str
    why: str


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
    moves: list[BuyerMove] = field(default_factory=list)
    learnt: dict[str, int] = field(default_factory=dict)
    retrain: engine.RetrainReport | None = None
    digest: engine.DigestReport | None = None
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


def run_demo(
    root: Path, seed: int = 7, *, end: datetime | None = None, with_digest: bool = True
) -> DemoReport:
    """The whole loop in `root`. The sample's new week ends at `end` (default: a couple of
    minutes from now, so that the buyer's moves, made now, are this week's news in the digest,
    which covers the week up to `end`)."""
    started = time.monotonic()
    end = end or (datetime.now(UTC) + timedelta(minutes=2)).replace(second=0, microsecond=0)
    buyer = sample.build(seed=seed, end=end)
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
    demo = DemoReport(
        root=root,
        history=len(buyer.history),
        partners=len(buyer.partners),
        train=trained,
        run=report,
        new_week=len(buyer.new_week),
        correct=correct,
        partner_to_generic=partner_to_generic,
        by_destination={k: (v[0], v[1]) for k, v in sorted(by_destination.items())},
    )
    demo.moves = play_the_buyer(mail, buyer, placed)
    learnt = engine.run_once(config, account)  # notices the moves
    demo.learnt = learnt.learnt
    demo.retrain = learnt.retrain or engine.retrain(config, account)
    if with_digest:
        demo.digest = engine.digest(config, account, end=end, out=root / "digest.html")
    demo.seconds = time.monotonic() - started
    return demo


def play_the_buyer(
    mail: Path, buyer: sample.SampleMailbox, placed: dict[str, str]
) -> list[BuyerMove]:
    """Two moves a buyer makes in their first week: a misfiled message put where it belongs
    (else a partner's newsletter sent to the generic bucket), and a generic vendor they have
    started working with promoted to a folder of its own."""
    filed = [(m, placed.get(message_id_from_header(m.data), "")) for m in buyer.new_week]
    wrong = [(m, where) for m, where in filed if where and where != expected_folder(m)]
    newsletters = [
        (m, where)
        for m, where in filed
        if m.kind == "newsletter" and where == m.folder != sample.GENERIC_FOLDER
    ]
    plan: list[tuple[sample.SampleMessage, str, str, str]] = []
    if wrong:
        m, where = wrong[0]
        plan.append((m, where, expected_folder(m), "triage got it wrong"))
    elif newsletters:
        m, where = newsletters[0]
        plan.append(
            (m, where, sample.GENERIC_FOLDER, "partner newsletters are not partner business")
        )
    generic = [
        (m, where)
        for m, where in filed
        if where == sample.GENERIC_FOLDER and m.vendor and m.kind not in ("newsletter", "webinar")
    ]
    if generic:
        m, where = generic[0]
        name = m.vendor.replace(".", "").replace("/", " ").strip()  # a Maildir++ folder name
        plan.append((m, where, sample.VENDOR_PREFIX + name, "a new partner"))
    moves = []
    with MaildirMailbox(mail) as box:
        for m, before, after, why in plan:
            if after not in {f.name for f in box.list_folders()}:
                box.create_folder(after)
            box.select(before)
            uids = box.search_message_id(message_id_from_header(m.data))
            box.move(uids, after)
            parsed = parse(m.data)
            moves.append(BuyerMove(parsed.subject, parsed.sender, before, after, why))
    return moves


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

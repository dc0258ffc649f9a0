"""Plan, then apply: what should happen to each new message, as data. Pure: no I/O here.

Rules come before the model: the buyer's own domains and `never_move` senders stay, a message
triage filed before and the buyer moved back stays (never fight the buyer), `[[rules]]` pin a
sender or domain to a folder; then the model decides, and below the confidence threshold the
message stays in the inbox.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from triage.config import AccountConfig
from triage.errors import ModelError
from triage.learn import SenderMemory
from triage.mailbox.base import header_block
from triage.message import DIGEST_ID_PREFIX, UNREADABLE, Message
from triage.model import KEEP, Prediction, TriageModel

# Why a message goes where it goes.
OWN_DOMAIN = "own-domain"
NEVER_MOVE = "never-move"
MOVED_BACK = "moved-back"
RULE = "rule"
SENDER_MEMORY = "sender-memory"
MODEL = "model"
BELOW_THRESHOLD = "below-threshold"
MODEL_KEEP = "model-keep"
DIGEST = "digest"
UNREADABLE_MAIL = "unreadable"


def header_hash(data: bytes) -> str:
    """A stable identity for a message on the server: its header does not change when moved."""
    return hashlib.sha256(header_block(data)).hexdigest()[:32]


def from_own_domain(message: Message, own_domains: Sequence[str]) -> bool:
    """Mail from the buyer's own domains (or their subdomains) always stays in the inbox."""
    domain = message.sender_domain
    return bool(domain) and any(domain == own or domain.endswith("." + own) for own in own_domains)


def sender_matches(sender: str, pattern: str) -> bool:
    """`pattern` is an address, or "@domain" (which also covers its subdomains)."""
    sender = sender.lower()
    if pattern.startswith("@"):
        domain = sender.rpartition("@")[2]
        return domain == pattern[1:] or domain.endswith("." + pattern[1:])
    return sender == pattern


@dataclass(frozen=True, slots=True)
class Planned:
    """The decision for one message: its destination (the inbox when it stays) and why."""

    uid: int
    message: Message
    header_hash: str
    destination: str
    confidence: float | None
    reason: str
    runner_up: str = ""

    def moves(self, inbox: str) -> bool:
        return self.destination != inbox


class Planner:
    """Turns new messages into decisions for one account."""

    def __init__(
        self,
        account: AccountConfig,
        model: TriageModel | None,
        memory: SenderMemory | None = None,
    ) -> None:
        self.account = account
        self.model = model
        self.memory = memory
        self.inbox = account.folders.inbox

    def rule_for(self, message: Message) -> tuple[str, str] | None:
        """A decision made before the model, as (destination, reason), or None."""
        sender = message.sender
        if message.defects and message.defects[0].startswith(UNREADABLE):
            return self.inbox, UNREADABLE_MAIL  # nothing to decide on: leave it to the buyer
        if message.message_id.startswith(DIGEST_ID_PREFIX):
            return self.inbox, DIGEST  # triage's own weekly digest
        if from_own_domain(message, self.account.own_domains) or (
            sender in self.account.own_addresses
        ):
            return self.inbox, OWN_DOMAIN
        if any(sender_matches(sender, p) for p in self.account.never_move):
            return self.inbox, NEVER_MOVE
        for rule in self.account.rules:
            if sender_matches(sender, rule.sender):
                return rule.folder, RULE
        # The buyer's corrections, ahead of the model, until a retrain has learnt them.
        remembered = self.memory.folder_for(sender) if self.memory is not None else None
        if remembered is not None:
            return remembered, SENDER_MEMORY
        return None

    def plan(
        self,
        uids: Sequence[int],
        messages: Sequence[Message],
        hashes: Sequence[str],
        filed_before: set[str],
    ) -> list[Planned]:
        decided: dict[int, Planned] = {}
        for_model: list[int] = []
        for i, (uid, message, digest) in enumerate(zip(uids, messages, hashes, strict=True)):
            if digest in filed_before:
                decided[i] = Planned(uid, message, digest, self.inbox, None, MOVED_BACK)
                continue
            rule = self.rule_for(message)
            if rule is not None:
                decided[i] = Planned(uid, message, digest, rule[0], None, rule[1])
            else:
                for_model.append(i)
        if for_model:
            if self.model is None:
                raise ModelError(
                    f"account {self.account.name!r} has no trained model; run `triage train`"
                )
            predictions = self.model.predict([messages[i] for i in for_model])
            for i, prediction in zip(for_model, predictions, strict=True):
                decided[i] = self._from_model(uids[i], messages[i], hashes[i], prediction)
        return [decided[i] for i in range(len(uids))]

    def _from_model(
        self, uid: int, message: Message, digest: str, prediction: Prediction
    ) -> Planned:
        threshold = self.account.confidence_threshold
        if prediction.folder == KEEP:
            return Planned(
                uid,
                message,
                digest,
                self.inbox,
                prediction.confidence,
                MODEL_KEEP,
                prediction.runner_up,
            )
        if prediction.confidence < threshold:
            return Planned(
                uid,
                message,
                digest,
                self.inbox,
                prediction.confidence,
                BELOW_THRESHOLD,
                prediction.folder,
            )
        return Planned(
            uid,
            message,
            digest,
            prediction.folder,
            prediction.confidence,
            MODEL,
            prediction.runner_up,
        )


def summarise(plan: Sequence[Planned], inbox: str) -> dict[str, int]:
    """Counts per destination, the inbox last (as "stays")."""
    counts = Counter(p.destination for p in plan)
    stays = counts.pop(inbox, 0)
    ordered = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    if stays:
        ordered["stays in " + inbox] = stays
    return ordered

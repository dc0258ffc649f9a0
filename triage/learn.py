"""Learning from the buyer: corrections, hand-filed mail, sender memory, when to retrain.

The buyer teaches triage by moving mail. Each cycle the engine looks at what is new in the
watched folders (the inbox, the generic bucket, every partner folder) and asks `classify_arrival`
what each arrival means: triage's own filing, a correction of one (the buyer moved it
elsewhere), or mail the buyer filed by hand. Corrections take effect at once through
`SenderMemory`; both corrections and hand-filed mail become training examples, and
`RetrainPolicy` says when a retrain is due. Pure: the engine does the I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from triage.message import Message

# What an arrival in a watched folder is.
OWN_FILING = "own-filing"  # triage put it there
CORRECTION = "correction"  # triage filed it elsewhere (or left it in the inbox); the buyer moved it
HAND_FILED = "hand-filed"  # triage never decided about it; the buyer (or a server rule) filed it
NEW_MAIL = "new-mail"  # a new message in the inbox: the filing loop's business


@dataclass(frozen=True, slots=True)
class Arrival:
    """What the engine knows of one new UID in a watched folder."""

    folder: str
    header_hash: str
    sender: str
    filed_to: str | None  # where triage last filed this message (None if it never did)
    decided: str | None  # where triage last decided it should be (incl. the inbox)
    undone: bool = False  # triage itself put it back (`triage undo`)


def classify_arrival(arrival: Arrival, inbox: str) -> str:
    if arrival.filed_to is not None and arrival.filed_to == arrival.folder and not arrival.undone:
        return OWN_FILING
    if arrival.undone and arrival.folder == inbox:
        return OWN_FILING  # undo's own move back is not the buyer's word
    if arrival.decided is not None and arrival.decided != arrival.folder:
        return CORRECTION
    if arrival.folder == inbox:
        return NEW_MAIL
    if arrival.decided == arrival.folder:
        return OWN_FILING
    return HAND_FILED


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


class SenderMemory:
    """Where the buyer last put mail from a sender; ahead of the model, until corrected again.

    A correction makes the sender's next message go where the buyer put the last one. That is
    right for a vendor (all its mail belongs in one folder) and wrong for a sender who writes
    about many things (a colleague, a list) into topic folders. So the memory also watches
    where the buyer keeps each sender's mail (`observe`) and applies a correction only to a
    sender whose mail "sticks": consecutive messages land in the same folder at least
    STICKY of the time over its recent placements. A domain is remembered too once the buyer
    has corrected two or more different addresses of it, all to the same folder (a vendor that
    writes from billing@, support@ and a rep's address is one vendor).
    """

    #: Distinct addresses of a domain, all corrected to one folder, before the domain follows.
    DOMAIN_AFTER = 2
    #: Share of consecutive placements in the same folder for a correction to apply.
    STICKY = 0.7
    #: How many recent placements per sender are weighed.
    RECENT = 20

    def __init__(self) -> None:
        self._corrected: dict[str, str] = {}  # address -> folder of its latest correction
        self._placed: dict[str, list[str]] = defaultdict(list)  # address -> recent folders

    def observe(self, sender: str, folder: str) -> None:
        """The buyer keeps a message from `sender` in `folder` (filed, confirmed or by hand)."""
        sender = sender.lower()
        if sender:
            placed = self._placed[sender]
            placed.append(folder)
            del placed[: -self.RECENT]

    def learn(self, sender: str, folder: str) -> None:
        """The buyer corrected a message from `sender` into `folder`."""
        sender = sender.lower()
        if not sender:
            return
        self.observe(sender, folder)
        self._corrected.pop(sender, None)  # re-inserted last: dict order is recency
        self._corrected[sender] = folder

    def forget(self, sender: str) -> None:
        """Drop a sender's correction: the retrained model has learned it."""
        self._corrected.pop(sender.lower(), None)

    def corrected(self) -> list[str]:
        return list(self._corrected)

    def sticky(self, sender: str) -> bool:
        placed = self._placed.get(sender, [])
        pairs = len(placed) - 1
        if pairs < 2:
            return True  # too little to tell: a new sender is most likely a vendor
        same = sum(a == b for a, b in pairwise(placed))
        return same / pairs >= self.STICKY

    def _address(self, sender: str) -> str | None:
        folder = self._corrected.get(sender)
        return folder if folder is not None and self.sticky(sender) else None

    def _domains(self) -> dict[str, str]:
        folders: dict[str, set[str]] = defaultdict(set)
        counts: dict[str, int] = defaultdict(int)
        for address in self._corrected:
            folder = self._address(address)
            if folder is None:
                continue
            domain = domain_of(address)
            folders[domain].add(folder)
            counts[domain] += 1
        return {
            domain: next(iter(fs))
            for domain, fs in folders.items()
            if len(fs) == 1 and counts[domain] >= self.DOMAIN_AFTER
        }

    def folder_for(self, sender: str) -> str | None:
        """The folder the buyer's corrections say this sender's mail goes to, or None."""
        sender = sender.lower()
        if not sender:
            return None
        if sender in self._corrected:
            return self._address(sender)
        return self._domains().get(domain_of(sender))


def settle_memory(
    memory: SenderMemory,
    examples: Sequence[tuple[Message, str]],
    predict: Callable[[Sequence[Message]], Sequence[str]],
) -> int:
    """After a retrain: forget the corrections the new model gets right by itself.

    Memory bridges the time until the model has learned a correction; kept longer, it would
    overrule a model that has learnt to read the content (a sender who writes about many
    things). `examples` are (message, folder) in time order; the latest example of each
    corrected sender is asked of the new model. Returns how many corrections were forgotten.
    """
    corrected = set(memory.corrected())
    latest: dict[str, tuple[Message, str]] = {}
    for message, folder in examples:
        sender = message.sender.lower()
        if sender in corrected:
            latest[sender] = (message, folder)
    if not latest:
        return 0
    probes = list(latest.values())
    forgotten = 0
    for (message, folder), predicted in zip(probes, predict([m for m, _ in probes]), strict=True):
        if predicted == folder:
            memory.forget(message.sender)
            forgotten += 1
    return forgotten


@dataclass(frozen=True, slots=True)
class RetrainPolicy:
    """When to retrain and whether to promote the result."""

    after_corrections: int = 20
    #: A retrained model whose holdout accuracy is lower than the current one's by more than
    #: this is kept aside, not promoted.
    margin: float = 0.02

    def due(self, corrections_since_training: int) -> bool:
        return corrections_since_training >= self.after_corrections

    def promote(self, current_score: float | None, new_score: float | None) -> bool:
        if new_score is None:
            return current_score is None
        if current_score is None:
            return True
        return new_score >= current_score - self.margin

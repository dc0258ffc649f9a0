"""Pure logic of learning from the buyer: what an arrival means, sender memory, retraining."""

from __future__ import annotations

from triage.learn import (
    CORRECTION,
    HAND_FILED,
    NEW_MAIL,
    OWN_FILING,
    Arrival,
    RetrainPolicy,
    SenderMemory,
    classify_arrival,
    settle_memory,
)
from triage.message import Message


def arrival(
    folder: str, filed_to: str | None = None, decided: str | None = None, undone: bool = False
) -> Arrival:
    return Arrival(folder, "h", "rep@acme.example", filed_to, decided, undone)


def test_what_an_arrival_means() -> None:
    inbox = "INBOX"
    assert classify_arrival(arrival("Vendors/Acme", "Vendors/Acme", "Vendors/Acme"), inbox) == (
        OWN_FILING
    )
    # Filed to the generic bucket, now in a partner folder: the buyer corrected it.
    assert (
        classify_arrival(arrival("Vendors/Acme", "Vendors/Generic", "Vendors/Generic"), inbox)
        == CORRECTION
    )
    # Moved back to the inbox: a correction to "keep".
    assert classify_arrival(arrival(inbox, "Vendors/Generic", "Vendors/Generic"), inbox) == (
        CORRECTION
    )
    # Left in the inbox by triage, filed by the buyer.
    assert classify_arrival(arrival("Vendors/Acme", None, inbox), inbox) == CORRECTION
    # Never seen by triage: mail the buyer (or a server rule) filed by hand.
    assert classify_arrival(arrival("Vendors/Acme"), inbox) == HAND_FILED
    assert classify_arrival(arrival(inbox), inbox) == NEW_MAIL
    # `triage undo` putting mail back is triage's own doing, not the buyer's word.
    assert (
        classify_arrival(arrival(inbox, "Vendors/Acme", "Vendors/Acme", undone=True), inbox)
        == OWN_FILING
    )


def test_a_correction_applies_to_the_next_message_from_that_sender() -> None:
    memory = SenderMemory()
    assert memory.folder_for("rep@acme.example") is None
    memory.learn("Rep@Acme.example", "Vendors/Acme")
    assert memory.folder_for("rep@acme.example") == "Vendors/Acme"
    assert memory.folder_for("other@acme.example") is None  # one address is not the domain
    memory.learn("rep@acme.example", "INBOX")  # a later correction says otherwise
    assert memory.folder_for("rep@acme.example") == "INBOX"


def test_a_vendor_promoted_out_of_the_generic_bucket_follows_at_once() -> None:
    memory = SenderMemory()
    for _ in range(10):
        memory.observe("news@acme.example", "Vendors/Generic")
    memory.learn("news@acme.example", "Vendors/Acme")
    assert memory.folder_for("news@acme.example") == "Vendors/Acme"


def test_several_addresses_of_one_domain_make_the_domain_follow() -> None:
    memory = SenderMemory()
    memory.learn("billing@acme.example", "Vendors/Acme")
    assert memory.folder_for("support@acme.example") is None
    memory.learn("rep@acme.example", "Vendors/Acme")
    assert memory.folder_for("support@acme.example") == "Vendors/Acme"
    # Addresses of one domain corrected to different folders: the domain is not remembered.
    memory.learn("sales@acme.example", "Vendors/Generic")
    assert memory.folder_for("support@acme.example") is None


def test_a_sender_writing_about_many_things_is_left_to_the_model() -> None:
    memory = SenderMemory()
    for folder in ["Projects/A", "Projects/B", "Projects/A", "Legal", "Projects/B"]:
        memory.observe("colleague@corp.example", folder)
    memory.learn("colleague@corp.example", "Legal")
    assert memory.folder_for("colleague@corp.example") is None


def message(sender: str) -> Message:
    return Message(key=sender, sender=sender)


def test_settle_forgets_what_the_retrained_model_learned() -> None:
    memory = SenderMemory()
    memory.learn("a@x.example", "Vendors/X")
    memory.learn("b@y.example", "Vendors/Y")
    examples = [(message("a@x.example"), "Vendors/X"), (message("b@y.example"), "Vendors/Y")]

    def predict(messages: object) -> list[str]:
        return ["Vendors/X", "Vendors/Generic"]  # learnt a's correction, not b's

    assert settle_memory(memory, examples, predict) == 1
    assert memory.folder_for("a@x.example") is None  # the model handles it now
    assert memory.folder_for("b@y.example") == "Vendors/Y"


def test_retrain_policy() -> None:
    policy = RetrainPolicy(after_corrections=3, margin=0.02)
    assert not policy.due(2) and policy.due(3)
    assert policy.promote(0.90, 0.89)
    assert not policy.promote(0.90, 0.87)
    assert policy.promote(None, 0.5)
    assert not policy.promote(0.9, None)

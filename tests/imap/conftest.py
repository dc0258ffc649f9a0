"""Fixtures shared by the IMAP tests that run triage on the sample buyer's mailbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from dovecot import ImapAccount
from helpers import seed_history, trained_config

from triage import sample
from triage.config import Config


@pytest.fixture(scope="session")
def buyer() -> sample.SampleMailbox:
    """The sample buyer: months of filed mail (history) and a new week (immutable)."""
    return sample.build(seed=5)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the first test that needs a model trained on `buyer` leaves it for the others."""
    return tmp_path_factory.mktemp("model")


@pytest.fixture
def trained_setup(
    imap_account: ImapAccount,
    buyer: sample.SampleMailbox,
    model_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Config:
    """A fresh account with the sample buyer's filed history and a config whose model is
    trained on it (the password in $TRIAGE_TEST_PASSWORD); nothing run yet."""
    monkeypatch.setenv("TRIAGE_TEST_PASSWORD", imap_account.password)
    seed_history(imap_account, buyer)
    return trained_config(tmp_path, imap_account, buyer, model_cache)

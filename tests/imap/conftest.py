"""Fixtures shared by the IMAP tests that run triage on the sample buyer's mailbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from triage import sample


@pytest.fixture(scope="session")
def buyer() -> sample.SampleMailbox:
    """The sample buyer: months of filed mail (history) and a new week (immutable)."""
    return sample.build(seed=5)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the first test that needs a model trained on `buyer` leaves it for the others."""
    return tmp_path_factory.mktemp("model")

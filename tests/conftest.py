"""Shared pytest fixtures: private Dovecot servers (tests/dovecot.py) and fresh IMAP accounts.

Servers are session-scoped and start on first use; each test that needs a mailbox gets its own
user (`imap_account`), so tests don't see each other's mail. Without Dovecot installed the
IMAP fixtures fail, never skip: a silently skipped IMAP suite would hide real breakage.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dovecot import DovecotServer, ImapAccount, missing_programs

__all__ = ["DovecotServer", "ImapAccount"]

_IMAP_DIR = Path(__file__).parent / "imap"
_IMAP_FIXTURES = frozenset(
    {"dovecot", "dovecot_tls", "dovecot_nomove", "dovecot_noidle", "imap_account"}
)


def pytest_configure(config: pytest.Config) -> None:
    """Declare the `imap` marker unless pyproject.toml already does."""
    if not any(m.startswith("imap:") for m in config.getini("markers")):
        config.addinivalue_line("markers", "imap: needs a real Dovecot (started by the tests)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests under tests/imap/, and any test using a Dovecot fixture, as `imap`."""
    for item in items:
        uses_server = _IMAP_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if _IMAP_DIR in item.path.parents or uses_server:
            item.add_marker(pytest.mark.imap)


def _server(**kwargs: object) -> Iterator[DovecotServer]:
    if missing := missing_programs():
        pytest.fail(
            f"the IMAP tests need Dovecot; not installed: {', '.join(missing)}. "
            "Run `make test` or `scripts/ensure-test-deps` (Debian: apt-get install dovecot-imapd)",
            pytrace=False,
        )
    with DovecotServer(**kwargs) as server:  # type: ignore[arg-type]
        yield server


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """A plain-IMAP Dovecot with every capability Dovecot 2.3 has (MOVE, IDLE, UIDPLUS...)."""
    yield from _server()


@pytest.fixture(scope="session")
def dovecot_tls() -> Iterator[DovecotServer]:
    """Dovecot with a self-signed certificate: `imaps_port` (implicit TLS), STARTTLS on `port`.

    Clients trust it with `cafile=server.cert_file`; the certificate names localhost and
    127.0.0.1.
    """
    yield from _server(tls=True)


@pytest.fixture(scope="session")
def dovecot_nomove() -> Iterator[DovecotServer]:
    """Dovecot that does not advertise MOVE (it still accepts the command, like some servers)."""
    yield from _server(capabilities_without=("MOVE",))


@pytest.fixture(scope="session")
def dovecot_noidle() -> Iterator[DovecotServer]:
    """Dovecot that does not advertise IDLE, for the polling fallback."""
    yield from _server(idle=False)


@pytest.fixture
def imap_account(dovecot: DovecotServer, request: pytest.FixtureRequest) -> ImapAccount:
    """A fresh user on the `dovecot` server, named after the test, with an empty mailbox."""
    return dovecot.new_account(request.node.name.removeprefix("test_"))

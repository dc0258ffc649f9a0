"""The exception tree: everything triage raises on purpose is a TriageError.

Messages name the thing that is wrong and the fix; cli.py turns them into one line on stderr and
an exit code. They never contain secrets or message bodies.
"""

from __future__ import annotations


class TriageError(Exception):
    """Base of every error triage raises on purpose."""

    exit_code = 1


class ConfigError(TriageError):
    """The config file (or a command-line option) is invalid."""

    exit_code = 2


class MailboxError(TriageError):
    """Talking to the mail store failed.

    `retryable` is true where the same call may succeed after a reconnect (a dropped
    connection, a timeout, a server restart); false where retrying cannot help (wrong
    password, certificate rejected, folder missing).
    """

    exit_code = 3

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class AuthError(MailboxError):
    """The server rejected the credentials."""


class TLSError(MailboxError):
    """The TLS handshake or the certificate check failed."""


class ConnectionLost(MailboxError):
    """The connection dropped or timed out; reconnect and retry."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class ModelError(TriageError):
    """A model is missing, untrusted, or was made by another version."""

    exit_code = 4


class StoreError(TriageError):
    """The state database is unusable or locked by another process."""

    exit_code = 5

"""The only code that talks to mail storage: one interface, an IMAP and a Maildir backend."""

from triage.mailbox.base import FetchedMessage, Folder, FolderState, Mailbox, MoveResult

__all__ = ["FetchedMessage", "Folder", "FolderState", "Mailbox", "MoveResult"]

"""triage: files a buyer's vendor mail over IMAP and learns from their corrections."""

__version__ = "0.1.0"

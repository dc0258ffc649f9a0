"""IMAP modified UTF-7 (RFC 3501 5.1.3), the on-disk encoding of non-ASCII Maildir++ names.

The IMAP backend gets this from imapclient; the Maildir backend must not import imapclient
(it has one home), and Dovecot and mbsync write Maildir++ folder names in this encoding.
"""

from __future__ import annotations

import base64


def encode(name: str) -> str:
    """ "Café/Été" -> "Caf&AOk-/&AMk-t&AOk-"."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append(
                "&" + base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",") + "-"
            )
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def decode(name: str) -> str:
    """The inverse of `encode`; undecodable runs are kept as they are."""
    out: list[str] = []
    index = 0
    while index < len(name):
        char = name[index]
        end = name.find("-", index) if char == "&" else -1
        if char != "&" or end < 0:
            out.append(char)
            index += 1
            continue
        chunk = name[index + 1 : end]
        if not chunk:
            out.append("&")
        else:
            data = chunk.replace(",", "/")
            try:
                out.append(base64.b64decode(data + "=" * (-len(data) % 4)).decode("utf-16-be"))
            except ValueError:
                out.append(name[index : end + 1])
        index = end + 1
    return "".join(out)

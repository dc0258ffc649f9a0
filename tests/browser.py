"""Headless Chromium for page tests: render an HTML file to a PNG, or dump its DOM after the
page's scripts (if any) ran; and a small PNG reader to look at the rendered pixels."""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

# Without the background-networking flags Chromium keeps trying to reach the network.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-color-profile=srgb",
)
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    for name in NAMES:
        if path := shutil.which(name):
            return path
    return None


def _chromium(args: list[str], timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    program = find_chromium()
    if program is None:
        raise RuntimeError(
            "the page tests need Chromium; run `make test` or `scripts/ensure-test-deps` "
            "(Debian: apt-get install chromium)"
        )
    with tempfile.TemporaryDirectory(prefix="triage-chromium-") as profile:
        return subprocess.run(
            [program, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )


def screenshot(page: Path, png: Path, width: int = 412, height: int = 4000) -> None:
    """Render `page` at a phone's width into `png` (the whole height given)."""
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    _chromium([f"--window-size={width},{height}", f"--screenshot={png}", page.as_uri()])
    if not png.exists():
        raise RuntimeError(f"Chromium wrote no screenshot to {png}")


def dump_dom(page: Path) -> str:
    """The page's DOM as serialised after loading (and after any script that ran)."""
    return _chromium(["--dump-dom", page.as_uri()]).stdout


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB bytes) of an 8-bit RGB or RGBA PNG, as Chromium writes."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    if depth != 8 or colour not in (2, 6):
        raise ValueError(f"{path}: unsupported PNG (depth {depth}, colour type {colour})")
    channels = 3 if colour == 2 else 4
    stride = width * channels
    raw = zlib.decompress(idat)
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + pred) & 0xFF
        previous = line
        if channels == 4:
            rows.append(bytes(b for j in range(0, stride, 4) for b in line[j : j + 3]))
        else:
            rows.append(bytes(line))
    return width, height, rows


def count_colour(rows: list[bytes], rgb: tuple[int, int, int], tolerance: int = 4) -> int:
    """Pixels within `tolerance` of `rgb` on every channel."""
    r0, g0, b0 = rgb
    count = 0
    for row in rows:
        for i in range(0, len(row), 3):
            if (
                abs(row[i] - r0) <= tolerance
                and abs(row[i + 1] - g0) <= tolerance
                and abs(row[i + 2] - b0) <= tolerance
            ):
                count += 1
    return count

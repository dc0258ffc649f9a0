"""A small TCP proxy on loopback for fault tests: cut, stall or reset a client's connection,
or answer a client's command in the server's place.

    with TcpProxy(server.port) as proxy:        # listens on 127.0.0.1:proxy.port
        proxy.cut_after(5000, "down")           # reset once 5000 more bytes went to the client
        ...

Each accepted connection gets one thread that copies bytes both ways with `select`, so every
fault is applied by the thread that owns the sockets (never a close from another thread while
one is blocked on them). A reset is a real RST (SO_LINGER 0): the client sees ECONNRESET, as
when a NAT box or a restarted server drops a flow. A plain module (no pytest), like dovecot.py.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import select
import socket
import struct
import threading
import time
from types import TracebackType
from typing import Literal

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
Direction = Literal["up", "down"]  # up: client -> server; down: server -> client

#: More connections than any test opens; beyond it the proxy refuses (closes at once).
MAX_CONNECTIONS = 64
_CHUNK = 65536
# How often an idle connection thread looks at its fault flags: bounds a reset's latency.
_TICK = 0.02
# A peer that takes no bytes for this long is dropped, so a stuck reader cannot hang stop().
_SEND_TIMEOUT = 10.0
_JOIN_TIMEOUT = 5.0
# A command line that announces a literal: its next N bytes are data, not lines. The client
# sends them at once after {N+} (LITERAL+), after the server's "+" go-ahead after {N}.
_LITERAL = re.compile(rb"\{([0-9]+)(\+?)\}\r\n$")
_GO_AHEAD = re.compile(rb"(?:^|\r\n)\+")


class _Commands:
    """Splits a client's stream into command lines (skipping literals) so that a line matching
    the armed refusal is answered by the proxy instead of reaching the server."""

    def __init__(self) -> None:
        self.buffer = b""
        self.literal = 0  # bytes of literal data still to pass through untouched
        # A {N} literal waits for the server: its "+" lets it come, a tagged answer to its
        # command (a NO for a full folder, say) means it never will.
        self.awaited = 0
        self.tag = b""

    def feed(self, data: bytes, pattern: re.Pattern[bytes], answer: bytes) -> tuple[bytes, bytes]:
        """What to forward to the server, and what to answer the client (a partial line is
        held until it is complete)."""
        self.buffer += data
        forward, answers = [], []
        while self.buffer:
            if self.literal:
                chunk = self.buffer[: self.literal]
                forward.append(chunk)
                self.literal -= len(chunk)
                self.buffer = self.buffer[len(chunk) :]
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0 or self.awaited:
                break
            line, self.buffer = self.buffer[: end + 2], self.buffer[end + 2 :]
            literal = _LITERAL.search(line)
            if literal and literal.group(2):
                self.literal = int(literal.group(1))
            elif literal:
                self.awaited, self.tag = int(literal.group(1)), line.split(b" ", 1)[0]
            elif pattern.match(line):
                answers.append(line.split(b" ", 1)[0] + b" " + answer + b"\r\n")
                continue
            forward.append(line)
        return b"".join(forward), b"".join(answers)

    def server_said(self, data: bytes) -> None:
        """Bytes from the server, while a {N} literal waits for its go-ahead."""
        if _GO_AHEAD.search(data):
            self.literal, self.awaited = self.awaited, 0
        elif re.search(rb"(?:^|\r\n)" + re.escape(self.tag) + rb" ", data):
            self.awaited = 0


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _rst(sock: socket.socket) -> None:
    """Close with a TCP reset instead of a FIN, and never raise."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Connection:
    """One client connection and its server leg, pumped by one thread."""

    def __init__(self, proxy: TcpProxy, client: socket.socket, number: int) -> None:
        self.proxy = proxy
        self.client = client
        self.number = number
        self.server: socket.socket | None = None
        self.reset_requested = False
        self.stalled = False
        self.commands = _Commands()
        # Bytes read but not yet sent when a stall began: sent first on resume.
        self.held: list[tuple[socket.socket, bytes]] = []
        self.thread = threading.Thread(
            target=self._run, name=f"tcpproxy-{proxy.port}-{number}", daemon=True
        )

    def _run(self) -> None:
        try:
            self.server = socket.create_connection(
                (self.proxy.target_host, self.proxy.target_port), timeout=5
            )
        except OSError as exc:
            log.debug("tcpproxy: connection %d: target unreachable (%s)", self.number, exc)
            _rst(self.client)
            self.proxy._forget(self)
            return
        for sock in (self.client, self.server):
            sock.settimeout(_SEND_TIMEOUT)
        legs: dict[socket.socket, tuple[socket.socket, Direction]] = {
            self.client: (self.server, "up"),
            self.server: (self.client, "down"),
        }
        reset = False
        try:
            while not self.proxy._stopping.is_set():
                if self.reset_requested:
                    reset = True
                    return
                if self.stalled:
                    # Bytes wait in the kernel buffers, as on a flow that silently died.
                    time.sleep(_TICK)
                    continue
                while self.held:
                    peer, data = self.held.pop(0)
                    peer.sendall(data)
                readable, _, _ = select.select(list(legs), [], [], _TICK)
                for sock in readable:
                    peer, direction = legs[sock]
                    limit = self.proxy._allowance(direction)
                    data = sock.recv(min(_CHUNK, limit) if limit is not None else _CHUNK)
                    if not data:  # one side closed: close the other one too
                        return
                    refusal = self.proxy._refusal if direction == "up" else None
                    if refusal is not None:
                        data, answers = self.commands.feed(data, *refusal)
                        if answers:
                            self.proxy._refused(answers.count(b"\r\n"))
                            self.client.sendall(answers)
                    elif direction == "up" and self.commands.buffer:  # refusals just ended
                        data, self.commands.buffer = self.commands.buffer + data, b""
                    elif direction == "down" and self.commands.awaited:
                        self.commands.server_said(data)
                    # Counted before it is sent: the peer may arm a cut as soon as it has it.
                    send, cut, stall = self.proxy._take(direction, len(data))
                    peer.sendall(data[:send])
                    if stall:
                        log.info(
                            "tcpproxy: stalled connection %d after %s bytes %s",
                            self.number,
                            self.proxy.bytes_down if direction == "down" else self.proxy.bytes_up,
                            direction,
                        )
                        self.stalled = True
                        if send < len(data):
                            self.held.append((peer, data[send:]))
                        break
                    if cut:
                        log.info(
                            "tcpproxy: cut connection %d after %s bytes %s",
                            self.number,
                            self.proxy.bytes_down if direction == "down" else self.proxy.bytes_up,
                            direction,
                        )
                        reset = True
                        return
        except OSError as exc:
            log.debug("tcpproxy: connection %d: %s", self.number, exc)
        finally:
            if reset:
                _rst(self.client)
                _rst(self.server)
            else:
                for sock in (self.client, self.server):
                    with contextlib.suppress(OSError):
                        sock.close()
            self.proxy._forget(self)


class TcpProxy:
    """Forwards 127.0.0.1:`port` (chosen by the OS) to `target_host`:`target_port`.

    Fault controls, all safe to call from any thread:
      `cut_after(n, direction)`  once `n` more bytes went that way, reset the connection that
                                 carried the n-th byte (exactly `n` are forwarded, though the
                                 reset may make the receiver drop what it had not read); one
                                 shot.
      `stall_after(n, direction)`  the same, but the connection stalls instead (until `resume`
                                 or `reset_all`); one shot.
      `stall()` / `resume()`     stop / restart moving bytes on the connections open now; new
                                 connections work, like a flow a NAT entry dropped silently.
      `reset_all()`              reset every open connection now.
      `refuse(pattern, answer)`  answer every client command line matching `pattern` with
                                 "<tag> answer" instead of sending it to the server (a server
                                 that says NO); `refuse(None)` stops. Arm it before the client
                                 connects: lines are told from literals from the first byte on.
    `bytes_up`, `bytes_down`, `accepted`, `cuts`, `stalls` and `refusals` count what happened;
    `wait_quiet` waits for the traffic to pause.
    """

    def __init__(self, target_port: int, target_host: str = HOST) -> None:
        if not _is_loopback(target_host):
            raise ValueError(f"tcpproxy only forwards to loopback, not {target_host!r}")
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.accepted = 0
        self.cuts = 0
        self.stalls = 0
        self.refusals = 0
        self.last_activity = time.monotonic()  # when a byte last went through, either way
        self._lock = threading.Lock()
        self._cut: dict[Direction, int] = {}
        self._stall: dict[Direction, int] = {}
        self._refusal: tuple[re.Pattern[bytes], bytes] | None = None
        self._connections: set[_Connection] = set()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, 0))
        listener.listen(16)
        listener.settimeout(_TICK * 5)
        self._listener = listener
        self.port = int(listener.getsockname()[1])
        self._acceptor = threading.Thread(
            target=self._accept, name=f"tcpproxy-{self.port}", daemon=True
        )
        self._acceptor.start()
        log.info("tcpproxy: 127.0.0.1:%d -> %s:%d", self.port, self.target_host, self.target_port)
        return self

    def stop(self) -> None:
        """Stop accepting, reset every connection, and wait for the threads."""
        self._stopping.set()
        self.reset_all()
        if self._acceptor is not None:
            self._acceptor.join(_JOIN_TIMEOUT)
        with self._lock:
            threads = [c.thread for c in self._connections]
        for thread in threads:
            thread.join(_JOIN_TIMEOUT)
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
            self._listener = None

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- faults ------------------------------------------------------------------------------

    def cut_after(self, nbytes: int, direction: Direction = "down") -> None:
        """Reset the connection that carries the `nbytes`-th byte from now in `direction`."""
        if direction not in ("up", "down"):
            raise ValueError(f"direction is 'up' or 'down', not {direction!r}")
        if nbytes < 1:
            raise ValueError("nbytes must be at least 1")
        with self._lock:
            self._cut[direction] = nbytes

    def stall_after(self, nbytes: int, direction: Direction = "down") -> None:
        """Stall the connection that carries the `nbytes`-th byte from now in `direction`."""
        if direction not in ("up", "down"):
            raise ValueError(f"direction is 'up' or 'down', not {direction!r}")
        if nbytes < 1:
            raise ValueError("nbytes must be at least 1")
        with self._lock:
            self._stall[direction] = nbytes

    def cut_pending(self, direction: Direction = "down") -> bool:
        """Whether a `cut_after` in `direction` has not fired yet."""
        with self._lock:
            return direction in self._cut

    def disarm(self) -> None:
        """Forget cuts and stalls that have not fired."""
        with self._lock:
            self._cut.clear()
            self._stall.clear()

    def refuse(self, pattern: bytes | None, answer: bytes = b"NO refused") -> None:
        """Answer client command lines matching the regex `pattern` (CRLF included, e.g.
        rb"\\S+ UID MOVE ") with "<tag> `answer`", in the server's place; None stops it."""
        with self._lock:
            self._refusal = None if pattern is None else (re.compile(pattern, re.I), answer)

    def stall(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.stalled = True

    def resume(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.stalled = False

    def reset_all(self) -> int:
        """Reset every open connection; returns how many there were."""
        with self._lock:
            connections = list(self._connections)
            for connection in connections:
                connection.reset_requested = True
        return len(connections)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._connections)

    def wait_quiet(self, quiet: float, timeout: float = 10.0) -> bool:
        """Wait until no byte has gone through for `quiet` seconds (an IMAP client that is
        idling, say); False if that did not happen within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() - self.last_activity < quiet:
            if time.monotonic() > deadline:
                return False
            time.sleep(_TICK)
        return True

    def wait_for(self, connections: int, timeout: float = 10.0) -> bool:
        """Wait until at least `connections` have been accepted in total."""
        deadline = time.monotonic() + timeout
        while self.accepted < connections:
            if time.monotonic() > deadline:
                return False
            time.sleep(_TICK)
        return True

    # -- internals ---------------------------------------------------------------------------

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                if len(self._connections) >= MAX_CONNECTIONS or self._stopping.is_set():
                    _rst(client)
                    continue
                self.accepted += 1
                connection = _Connection(self, client, self.accepted)
                self._connections.add(connection)
            connection.thread.start()

    def _forget(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _allowance(self, direction: Direction) -> int | None:
        """How many bytes may pass before the armed cut or stall, or None when none is armed."""
        with self._lock:
            armed = [n for n in (self._cut.get(direction), self._stall.get(direction)) if n]
            return min(armed) if armed else None

    def _refused(self, count: int) -> None:
        with self._lock:
            self.refusals += count

    def _take(self, direction: Direction, count: int) -> tuple[int, bool, bool]:
        """How many of `count` bytes read may go on, counted as gone; and whether they reach
        the armed cut, or the armed stall (which is then spent)."""
        with self._lock:
            self.last_activity = time.monotonic()
            cut_left, stall_left = self._cut.get(direction), self._stall.get(direction)
            send = min(n for n in (count, cut_left, stall_left) if n is not None)
            if direction == "up":
                self.bytes_up += send
            else:
                self.bytes_down += send
            cut = cut_left is not None and send >= cut_left
            stall = not cut and stall_left is not None and send >= stall_left
            if cut:
                del self._cut[direction]
                self.cuts += 1
            elif cut_left is not None:
                self._cut[direction] = cut_left - send
            if stall:
                del self._stall[direction]
                self.stalls += 1
            elif stall_left is not None:
                self._stall[direction] = stall_left - send
            return send, cut, stall

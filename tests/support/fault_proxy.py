"""A fault-injecting HTTP proxy on loopback, to test retries against a real server without mocks.

It forwards raw HTTP/1.1 requests to an upstream server, but the first attempt of a deterministic, seeded share
of the distinct requests fails instead: 429 (with Retry-After: 0), 500, a connection reset (RST), or a stall
that holds the connection longer than the client's timeout. A request is identified by its body, so a retry of
a failed request is recognised and passes through. Everything it does is counted.

One request per connection (it answers `Connection: close`), so a client never reuses a socket the proxy is
about to break. It runs its own asyncio loop in a background thread, so synchronous tests can use it.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import random
import socket
import struct
import threading
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

RATE_LIMIT, SERVER_ERROR, RESET, STALL = "429", "500", "reset", "stall"
ALL_FAULTS = (RATE_LIMIT, SERVER_ERROR, RESET, STALL)
_HEADER_LIMIT = 1 << 20


@dataclass(frozen=True)
class FaultPlan:
    """Exactly round(share * expected_requests) of the first `expected_requests` distinct requests fail once,
    the fault kinds as evenly mixed as the count allows, their positions shuffled by `seed`."""

    share: float = 0.0
    expected_requests: int = 0
    kinds: tuple[str, ...] = ALL_FAULTS
    seed: int = 0
    stall_s: float = 10.0

    def schedule(self) -> list[str | None]:
        n_faults = round(self.share * self.expected_requests)
        faults = [self.kinds[i % len(self.kinds)] for i in range(n_faults)]
        slots: list[str | None] = faults + [None] * (self.expected_requests - n_faults)
        random.Random(self.seed).shuffle(slots)
        return slots


@dataclass
class ProxyCounts:
    received: int = 0  # every HTTP request that arrived, retries included
    forwarded: int = 0  # requests passed to the upstream server and answered by it
    faults: collections.Counter = field(default_factory=collections.Counter)  # kind -> how many injected
    distinct_bodies: int = 0

    @property
    def total_faults(self) -> int:
        return sum(self.faults.values())


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int, plan: FaultPlan | None = None):
        self.upstream = (upstream_host, upstream_port)
        self.plan = plan or FaultPlan()
        self._schedule = self.plan.schedule()
        self._lock = threading.Lock()
        self._counts = ProxyCounts()
        self._attempts: dict[str, int] = {}  # body hash -> attempts seen
        self._fault_of: dict[str, str | None] = {}  # body hash -> its planned first-attempt fault
        self.headers_seen: list[dict[str, str]] = []  # lower-cased request headers, in arrival order
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._tasks: set[asyncio.Task] = set()

    # ----- lifecycle -----
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FaultProxy":
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout=10):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def counts(self) -> ProxyCounts:
        with self._lock:
            c = self._counts
            return ProxyCounts(c.received, c.forwarded, collections.Counter(c.faults), c.distinct_bodies)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(self._on_connection, "127.0.0.1", 0, limit=_HEADER_LIMIT)
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        async with server:
            await self._stopped.wait()
            server.close()
            for task in list(self._tasks):  # stalled connections would otherwise outlive the proxy
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ----- one connection, one request -----
    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
            log.debug("fault proxy: connection ended early: %r", e)
        except asyncio.CancelledError:
            # stop() cancels stalled and in-flight connections; ending quietly keeps asyncio from logging an error
            log.debug("fault proxy: connection cancelled at shutdown")
        finally:
            self._tasks.discard(task)
            if not writer.is_closing():
                writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, headers = _parse_head(head)
        body = await reader.readexactly(int(_header(headers, "content-length") or 0))
        fault = self._register(headers, body)
        if fault == RATE_LIMIT:
            await _respond(writer, 429, b'{"error":{"message":"rate limited by fault proxy","type":"rate_limit"}}',
                           extra=[("Retry-After", "0")])
        elif fault == SERVER_ERROR:
            await _respond(writer, 500, b'{"error":{"message":"injected server error","type":"server_error"}}')
        elif fault == RESET:
            _reset(writer)
        elif fault == STALL:
            await asyncio.sleep(self.plan.stall_s)
            _reset(writer)
        else:
            await self._forward(request_line, headers, body, writer)

    def _register(self, headers: list[tuple[str, str]], body: bytes) -> str | None:
        """Count the request and decide its fate: only a distinct request's first attempt may fail."""
        key = hashlib.sha256(body).hexdigest()
        with self._lock:
            self._counts.received += 1
            self.headers_seen.append({k.lower(): v for k, v in headers})
            attempt = self._attempts.get(key, 0)
            self._attempts[key] = attempt + 1
            if attempt == 0:
                ordinal = self._counts.distinct_bodies
                self._counts.distinct_bodies += 1
                self._fault_of[key] = self._schedule[ordinal] if ordinal < len(self._schedule) else None
            fault = self._fault_of[key] if attempt == 0 else None
            if fault is not None:
                self._counts.faults[fault] += 1
            return fault

    async def _forward(self, request_line: bytes, headers: list[tuple[str, str]], body: bytes,
                       writer: asyncio.StreamWriter) -> None:
        host, port = self.upstream
        up_reader, up_writer = await asyncio.open_connection(host, port, limit=_HEADER_LIMIT)
        try:
            kept = [(k, v) for k, v in headers if k.lower() not in ("host", "connection", "keep-alive")]
            out = [request_line, f"Host: {host}:{port}".encode(), b"Connection: close"]
            out += [f"{k}: {v}".encode("latin-1") for k, v in kept]
            up_writer.write(b"\r\n".join(out) + b"\r\n\r\n" + body)
            await up_writer.drain()
            status_line, resp_headers = _parse_head(await up_reader.readuntil(b"\r\n\r\n"))
            length = _header(resp_headers, "content-length")
            resp_body = await (up_reader.readexactly(int(length)) if length is not None else up_reader.read())
        finally:
            up_writer.close()
        kept = [(k, v) for k, v in resp_headers if k.lower() not in ("connection", "keep-alive")]
        out = [status_line, b"Connection: close"] + [f"{k}: {v}".encode("latin-1") for k, v in kept]
        writer.write(b"\r\n".join(out) + b"\r\n\r\n" + resp_body)
        await writer.drain()
        with self._lock:
            self._counts.forwarded += 1


def _parse_head(head: bytes) -> tuple[bytes, list[tuple[str, str]]]:
    lines = head.rstrip(b"\r\n").split(b"\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


async def _respond(writer: asyncio.StreamWriter, status: int, body: bytes,
                   extra: list[tuple[str, str]] = ()) -> None:
    reason = {429: "Too Many Requests", 500: "Internal Server Error"}.get(status, "Error")
    lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json", f"Content-Length: {len(body)}",
             "Connection: close"] + [f"{k}: {v}" for k, v in extra]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashed server or a dropping load balancer does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()

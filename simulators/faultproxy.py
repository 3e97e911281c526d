"""A loopback TCP fault proxy: put it between the gateway and the broker and break the link.

Modes (switchable at run time, applied to live connections):

* ``pass`` - forward both ways;
* ``delay`` - forward, each chunk held ``delay`` seconds;
* ``drop_up`` / ``drop_down`` - silently discard client->server / server->client bytes (e.g.
  PUBACKs lost one way) while the TCP connections stay up;
* ``blackhole`` - discard both ways: a half-open link, nothing is closed;
* ``refuse`` - close new connections at once (the broker's host is there, its port is not).

``reset()`` aborts every live connection with a TCP RST (SO_LINGER 0). The proxy runs its own
event loop in a thread so that synchronous tests and other event loops can use it alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
from typing import Literal

log = logging.getLogger(__name__)

Mode = Literal["pass", "delay", "drop_up", "drop_down", "blackhole", "refuse"]


class FaultProxy:
    """``127.0.0.1:listen_port`` -> ``127.0.0.1:upstream_port`` with injectable faults."""

    def __init__(self, upstream_port: int, listen_port: int = 0) -> None:
        self.upstream_port = upstream_port
        self.port = listen_port
        self.mode: Mode = "pass"
        self.delay = 0.0
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # ----------------------------------------------------------------- control (any thread)

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def set_mode(self, mode: Mode, delay: float = 0.0) -> None:
        log.info("fault proxy mode=%s delay=%.2f", mode, delay)
        self.mode, self.delay = mode, delay

    def reset(self) -> None:
        """Abort every live connection with RST."""
        loop = self._loop
        if loop is not None:
            asyncio.run_coroutine_threadsafe(self._reset_all(), loop).result(10)

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._loop = None

    # ----------------------------------------------------------------- the proxy's loop

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._server = loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._reset_all()

    async def _reset_all(self) -> None:
        for writer in list(self._writers):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    # SO_LINGER on, timeout 0: close() sends RST instead of FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, "up"),
                self._pump(up_reader, writer, "down"),
                return_exceptions=True,
            )
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str
    ) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                writer.transport.abort()  # peer closed: close the other side too
                return
            mode = self.mode
            if mode in ("blackhole", f"drop_{direction}"):
                continue
            if mode == "delay" and self.delay > 0:
                await asyncio.sleep(self.delay)
            writer.write(data)
            await writer.drain()

"""A virtual BLE radio in this process: a Bumble ``LocalLink`` and its controllers.

Every controller on the link hears the others' advertising and connection PDUs, as radios in
one room would. Simulated peripherals get in-process controllers (:meth:`VirtualRadio.hci`);
the gateway gets its controller over Bumble's TCP HCI transport (H4 packets over a socket):
:meth:`VirtualRadio.start` listens on a free 127.0.0.1 port and :attr:`VirtualRadio.hci_transport`
is the ``tcp-client:127.0.0.1:PORT`` name a gateway in this or another process opens.

Workarounds (bumble 0.0.236, Python 3.11):

- The controllers are :class:`VirtualController`: Bumble's answers LE Create Connection
  Cancel without ending the attempt, so a host giving up a connection waits for ever.
- The listening socket is made here with an explicit ``IPPROTO_TCP``, so that asyncio turns
  Nagle's algorithm off on the accepted connection (40 ms per HCI round trip otherwise).
- Closing Bumble's ``tcp-server`` transport closes neither its listening socket nor the
  accepted connection: :meth:`VirtualRadio.close` closes both.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from types import TracebackType
from typing import Any, Self

from bumble import hci
from bumble.controller import Controller
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink, Transport, TransportSink, TransportSource
from bumble.transport.tcp_server import open_tcp_server_transport_with_socket

log = logging.getLogger(__name__)


class VirtualController(Controller):
    """Bumble's virtual controller, with LE Create Connection Cancel as the spec has it.

    Core Vol 4 Part E 7.8.13: the cancel is answered by a Command Complete, then the pending
    connection attempt ends with an LE Connection Complete event whose status is Unknown
    Connection Identifier (0x02); with no attempt pending, the command is disallowed (0x0C).
    bumble 0.0.236 answers success and nothing else, so a host that gives up connecting
    waits forever for the end of the attempt, and the controller stays initiating (every
    later LE Create Connection is then disallowed).
    """

    def on_hci_le_create_connection_cancel_command(
        self, _command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        ended = hci.HCI_LE_Connection_Complete_Event(
            status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
            connection_handle=0,
            role=hci.Role.CENTRAL,
            peer_address_type=pending.peer_address_type,
            peer_address=pending.peer_address,
            connection_interval=0,
            peripheral_latency=0,
            supervision_timeout=0,
            central_clock_accuracy=0,
        )
        # after the Command Complete that the caller sends for the returned parameters
        asyncio.get_running_loop().call_soon(self.send_hci_packet, ended)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)


class VirtualRadio:
    """``peripherals`` in-process controllers plus one for the gateway, served over TCP."""

    def __init__(self, peripherals: int = 1, *, host: str = "127.0.0.1") -> None:
        if peripherals < 1:
            raise ValueError("a radio needs at least one peripheral controller")
        self._count = peripherals
        self._host = host
        self.link: LocalLink | None = None
        self.controllers: list[Controller] = []
        self.gateway_controller: Controller | None = None
        self._server: Transport | None = None
        self.port = 0

    @property
    def hci_transport(self) -> str:
        """The Bumble transport name of the gateway's controller: ``tcp-client:HOST:PORT``."""
        if not self.port:
            raise RuntimeError("the radio is not started")
        return f"tcp-client:{self._host}:{self.port}"

    @property
    def server_transport(self) -> str:
        """The same endpoint as Bumble names the listening side: ``tcp-server:HOST:PORT``."""
        return f"tcp-server:{self._host}:{self.port}"

    def hci(self, index: int) -> tuple[TransportSource, TransportSink]:
        """HCI source and sink of peripheral controller ``index``, for a Bumble ``Host``.

        Packets to the controller go through the event loop (as on a wire), packets from it
        are delivered at once: Bumble's own test rig wires its hosts the same way.
        """
        controller = self.controllers[index]
        return controller, AsyncPipeSink(controller)

    async def start(self) -> Self:
        # bumble's LocalLink.__init__ has no annotations (bumble 0.0.236)
        self.link = LocalLink()  # type: ignore[no-untyped-call]
        for index in range(self._count):
            self.controllers.append(
                VirtualController(
                    f"peripheral-{index}",
                    link=self.link,
                    public_address=f"F0:00:00:00:{index >> 8:02X}:{index & 0xFF:02X}",
                )
            )
        # Bind first, then hand the socket to Bumble: the port is free and known up front.
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets whose proto says
        # TCP, and accepted sockets inherit proto 0 from a plain socket(); with Nagle's
        # algorithm on, every HCI round trip waits ~40 ms for the peer's delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.bind((self._host, 0))
            self._server = await open_tcp_server_transport_with_socket(sock)
        except BaseException:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self.gateway_controller = VirtualController(
            "gateway",
            host_source=self._server.source,
            host_sink=self._server.sink,
            link=self.link,
            public_address="F1:00:00:00:00:01",
        )
        log.debug("virtual radio: %d peripheral(s), gateway HCI on %s", self._count, self.port)
        return self

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.close()
            listener: Any = getattr(server, "server", None)  # bumble's TcpServerTransport
            connection: Any = getattr(server.sink, "transport", None)
            if connection is not None:
                connection.close()
            if isinstance(listener, asyncio.Server):
                listener.close()
                await listener.wait_closed()
        for controller in [*self.controllers, self.gateway_controller]:
            if controller is not None and self.link is not None:
                controller.le_legacy_advertiser.stop()
                for advertising_set in controller.advertising_sets.values():
                    advertising_set.stop()
                self.link.remove_controller(controller)
        self.controllers.clear()
        self.gateway_controller = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

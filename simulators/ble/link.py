"""A virtual BLE radio in this process: a Bumble ``LocalLink`` and its controllers.

Every controller on the link hears the others' advertising and connection PDUs, as radios in
one room would. Simulated peripherals get in-process controllers (:meth:`VirtualRadio.hci`);
the gateway gets its controller over TCP HCI (H4 packets over a socket, as Bumble's
``tcp-server`` transport speaks it): :meth:`VirtualRadio.start` listens on 127.0.0.1 (a free
port, or the one given) and :attr:`VirtualRadio.hci_transport` is the
``tcp-client:127.0.0.1:PORT`` name a gateway in this or another process opens.

The gateway's controller behaves as a USB dongle would: when the gateway's TCP connection is
lost (its process died: the dongle lost power) or its host sends HCI Reset, the controller's
LE links end, and the peripherals see the disconnection their supervision timer would report
(Connection Timeout, 0x08), so they advertise again and a restarted gateway finds them.
:meth:`VirtualRadio.unplug_gateway` does the former on purpose.

Workarounds (bumble 0.0.236, Python 3.11):

- The controllers are :class:`VirtualController`: Bumble's answers LE Create Connection
  Cancel without ending the attempt, so a host giving up a connection waits for ever; and its
  HCI Reset leaves links, scanning and advertising as they were.
- The TCP side is served here, not by Bumble's ``tcp-server`` transport: that one shares one
  H4 parser between successive connections (a connection cut mid-packet corrupts the next),
  does not tell the controller a connection was lost, and closes neither its listening socket
  nor the accepted connection.
- The listening socket is made with an explicit ``IPPROTO_TCP``, so that asyncio turns
  Nagle's algorithm off on the accepted connection (40 ms per HCI round trip otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from types import TracebackType
from typing import Self

from bumble import hci, ll
from bumble.controller import Controller
from bumble.core import InvalidArgumentError, InvalidPacketError
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink, PacketParser, TransportSink, TransportSource

log = logging.getLogger(__name__)


class VirtualController(Controller):
    """Bumble's virtual controller, with LE Create Connection Cancel and Reset as specified."""

    def on_hci_le_create_connection_cancel_command(
        self, _command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        """Core Vol 4 Part E 7.8.13: end the pending attempt, or refuse (0x0C) without one.

        The cancel is answered by a Command Complete, then the pending connection attempt ends
        with an LE Connection Complete event whose status is Unknown Connection Identifier
        (0x02). bumble 0.0.236 answers success and nothing else, so a host that gives up
        connecting waits forever for the end of the attempt, and the controller stays
        initiating (every later LE Create Connection is then disallowed).
        """
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

    def on_hci_disconnect_command(self, command: hci.HCI_Disconnect_Command) -> None:
        """Core Vol 4 Part E 7.1.6: a handle with no link is refused at once (0x02).

        bumble 0.0.236 answers "pending" and then nothing, so a host that asks to end a link
        the controller already lost (after a Reset, say) waits for ever.
        """
        handle = command.connection_handle
        known = (
            self.find_connection_by_handle(handle) is not None
            or self.find_classic_sco_link_by_handle(handle) is not None
            or self.find_iso_link_by_handle(handle) is not None
        )
        if not known:
            self._send_hci_command_status(
                hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR, command.op_code
            )
            return
        super().on_hci_disconnect_command(command)

    def on_hci_reset_command(
        self, command: hci.HCI_Reset_Command
    ) -> hci.HCI_StatusReturnParameters:
        """Core Vol 4 Part E 7.3.2: back to the power-on state, links, scans and advertising gone.

        The host asked for it, so no event tells it about the links (it forgets them itself);
        bumble 0.0.236 answers success and changes nothing, so a restarted gateway would find
        its peripherals still connected to a host that no longer exists.
        """
        self.lose_le_links(tell_host=False)
        self.power_down()
        return super().on_hci_reset_command(command)

    def lose_le_links(
        self, reason: int = hci.HCI_CONNECTION_TIMEOUT_ERROR, *, tell_host: bool = True
    ) -> int:
        """End every LE link as a radio gone silent would; the number of links ended.

        A controller that stops transmitting sends no LL_TERMINATE_IND: each peer's link
        supervision timer expires and its controller reports Disconnection Complete with
        Connection Timeout (0x08, Core Vol 6 Part B 4.5.2). The virtual link has no timers, so
        the ending is delivered to the peers at once, as an LL_TERMINATE_IND carrying
        ``reason``. ``tell_host``: also report it to this controller's own host.
        """
        links = list(self.le_connections.values())
        for connection in links:
            with contextlib.suppress(InvalidArgumentError):  # the peer left the link already
                connection.send_ll_control_pdu(ll.TerminateInd(reason))
            if tell_host:
                self.on_le_disconnected(connection, reason)
            else:
                del self.le_connections[connection.peer_address]
        return len(links)

    def power_down(self) -> None:
        """Stop scanning, initiating and advertising (what Reset and a power loss share)."""
        self.le_scan_enable = False
        self.pending_le_connection = None
        self.le_legacy_advertiser.stop()
        for advertising_set in self.advertising_sets.values():
            advertising_set.stop()
        self.advertising_sets.clear()


class _HciConnection(asyncio.Protocol):
    """One gateway host on the TCP socket: H4 packets both ways, a fresh parser per connection."""

    def __init__(self, radio: VirtualRadio) -> None:
        self.radio = radio
        self.transport: asyncio.Transport | None = None
        self.parser: PacketParser | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.parser = PacketParser(self.radio.gateway)
        self.radio.attach(self)

    def data_received(self, data: bytes) -> None:
        assert self.parser is not None
        try:
            self.parser.feed_data(data)
        except InvalidPacketError as error:
            log.warning("virtual radio: bad H4 packet from the gateway, dropping it: %s", error)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.radio.detach(self, exc)

    def on_packet(self, packet: bytes) -> None:
        """Controller to host (the controller's host sink)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(packet)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class VirtualRadio:
    """``peripherals`` in-process controllers plus one for the gateway, served over TCP."""

    def __init__(self, peripherals: int = 1, *, port: int = 0, host: str = "127.0.0.1") -> None:
        if peripherals < 1:
            raise ValueError("a radio needs at least one peripheral controller")
        self._count = peripherals
        self._host = host
        self._requested_port = port
        self.link: LocalLink | None = None
        self.controllers: list[VirtualController] = []
        self.gateway_controller: VirtualController | None = None
        self._server: asyncio.Server | None = None
        self._connection: _HciConnection | None = None
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

    @property
    def gateway(self) -> VirtualController:
        if self.gateway_controller is None:
            raise RuntimeError("the radio is not started")
        return self.gateway_controller

    @property
    def gateway_connected(self) -> bool:
        """Whether a gateway host holds the TCP HCI connection."""
        return self._connection is not None

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
        self.gateway_controller = VirtualController(
            "gateway", link=self.link, public_address="F1:00:00:00:00:01"
        )
        # Bind first, then serve: the port is known up front (0: a free one).
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets whose proto says
        # TCP, and accepted sockets inherit proto 0 from a plain socket(); with Nagle's
        # algorithm on, every HCI round trip waits ~40 ms for the peer's delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._requested_port))
            self._server = await asyncio.get_running_loop().create_server(
                lambda: _HciConnection(self), sock=sock
            )
        except BaseException:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        log.debug("virtual radio: %d peripheral(s), gateway HCI on %s", self._count, self.port)
        return self

    def attach(self, connection: _HciConnection) -> None:
        """A gateway host connected: it gets the controller (a newer one takes it over)."""
        previous, self._connection = self._connection, connection
        if previous is not None:
            log.warning("virtual radio: a new gateway connection takes over the controller")
            self._power_loss()
            previous.close()
        self.gateway.host = connection

    def detach(self, connection: _HciConnection, error: Exception | None = None) -> None:
        """A gateway connection ended: if it held the controller, the dongle lost power."""
        if connection is not self._connection:
            return
        self._connection = None
        dropped = self._power_loss()
        self.gateway.host = None
        log.info("virtual radio: gateway HCI lost (%s): %d link(s) dropped", error, dropped)

    def _power_loss(self) -> int:
        controller = self.gateway
        dropped = controller.lose_le_links(tell_host=False)
        controller.power_down()
        return dropped

    def unplug_gateway(self) -> None:
        """Cut the gateway's TCP HCI connection, as pulling its dongle out would."""
        if self._connection is not None:
            self._connection.close()

    async def close(self) -> None:
        server, self._server = self._server, None
        if self._connection is not None:
            self._connection.close()
        if server is not None:
            server.close()
            await server.wait_closed()
        for controller in [*self.controllers, self.gateway_controller]:
            if controller is not None and self.link is not None:
                controller.power_down()
                self.link.remove_controller(controller)
        self.controllers.clear()
        self.gateway_controller = None
        self._connection = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

"""``serial://`` - the one module that imports pyserial.

URL form: ``serial:///dev/ttyUSB0?baudrate=9600&bytesize=8&parity=N&stopbits=2&rtscts=0&xonxoff=0``
(the path may be a udev or simulator symlink). Reads are event driven through the asyncio loop's
``add_reader`` on the port's file descriptor, so an idle port costs nothing.
"""

from __future__ import annotations

import asyncio

import serial

from drivers.errors import DeviceConfigError, TransientDeviceError
from drivers.transport.base import ByteTransport
from drivers.transport.settings import SerialSettings


class SerialTransport(ByteTransport):
    """A local serial port (RS-232 / USB CDC / pty) driven by pyserial."""

    def __init__(self, url: str, settings: SerialSettings) -> None:
        super().__init__(url)
        self.settings = settings
        self._port: serial.Serial | None = None

    async def _open(self) -> None:
        s = self.settings
        try:
            port = serial.Serial(
                port=s.path,
                baudrate=s.baudrate,
                bytesize=s.bytesize,
                parity=s.parity,
                stopbits=s.stopbits,
                rtscts=s.rtscts,
                xonxoff=s.xonxoff,
                timeout=0,  # non-blocking: waiting happens in the event loop
                write_timeout=s.write_timeout,
                exclusive=True,
            )
        except (serial.SerialException, OSError) as exc:
            raise TransientDeviceError(f"cannot open {s.path}: {exc}") from exc
        except ValueError as exc:  # pyserial's verdict on a line setting
            raise DeviceConfigError(f"{s.path}: {exc}") from exc
        self._port = port

    async def _close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            port.close()

    async def _read(self, max_bytes: int) -> bytes:
        port = self._port
        if port is None:
            raise TransientDeviceError(f"{self.url} is closed")
        while True:
            try:
                data: bytes = port.read(max_bytes)
            except (serial.SerialException, OSError) as exc:
                # pyserial raises when select() says readable but read() returns nothing:
                # on a pty or USB adapter that is a hang-up.
                raise TransientDeviceError(f"{self.settings.path} disconnected: {exc}") from exc
            if data:
                return data
            await self._wait_readable(port.fileno())

    async def _write(self, data: bytes) -> None:
        port = self._port
        if port is None:
            raise TransientDeviceError(f"{self.url} is closed")
        try:
            await asyncio.to_thread(port.write, data)
        except (serial.SerialException, OSError) as exc:
            raise TransientDeviceError(f"{self.settings.path} write failed: {exc}") from exc

    @staticmethod
    async def _wait_readable(fd: int) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def _on_ready() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, _on_ready)
        try:
            await ready
        finally:
            loop.remove_reader(fd)

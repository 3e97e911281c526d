"""Transports: URL parsing, loop://, spy+ and serial:// on a real pty."""

from __future__ import annotations

import asyncio
import logging
import os
import tty
from pathlib import Path

import pytest

from drivers.errors import DeviceConfigError, DeviceTimeoutError, TransientDeviceError
from drivers.transport import (
    LoopTransport,
    SerialSettings,
    SpyTransport,
    open_transport,
    parse_serial_url,
    validate_url,
)


def test_serial_url_carries_line_settings() -> None:
    s = parse_serial_url(
        "serial:///dev/ttyUSB0?baudrate=2400&bytesize=7&parity=e&stopbits=2&rtscts=1&xonxoff=no"
    )
    assert s == SerialSettings("/dev/ttyUSB0", 2400, 7, "E", 2.0, rtscts=True, xonxoff=False)
    assert parse_serial_url("serial:///dev/ttyS0") == SerialSettings("/dev/ttyS0")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("serial://dev/ttyUSB0", "absolute path"),
        ("serial://", "serial path must be absolute"),
        ("serial:///dev/x?baud=9600", "unknown serial URL option 'baud'"),
        ("serial:///dev/x?parity=Q", "parity must be one of"),
        ("serial:///dev/x?stopbits=3", "bad value '3' for stopbits"),
        ("serial:///dev/x?baudrate=fast", "bad value 'fast' for baudrate"),
        ("tcp://127.0.0.1:502", "unsupported transport URL"),
        ("/dev/ttyUSB0", "unsupported transport URL"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(DeviceConfigError, match=message):
        validate_url(url)


def test_loop_echoes_and_times_out() -> None:
    async def scenario() -> None:
        t = open_transport("loop://")
        async with t:
            await t.write(b"hello")
            assert await t.read(3) == b"hel"
            assert await t.read() == b"lo"
            with pytest.raises(DeviceTimeoutError, match=r"within 0\.05 s"):
                await t.read(timeout=0.05)

    asyncio.run(scenario())


def test_pair_hang_up_fails_both_ends() -> None:
    async def scenario() -> None:
        a, b = LoopTransport.pair()
        await a.open()
        await b.open()
        await a.write(b"x")
        assert await b.read() == b"x"
        pending = asyncio.create_task(b.read())
        await asyncio.sleep(0)
        a.hang_up()
        with pytest.raises(TransientDeviceError, match="hung up"):
            await pending
        with pytest.raises(TransientDeviceError):
            await a.write(b"y")

    asyncio.run(scenario())


def test_spy_hexdumps_both_directions(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        t = open_transport("spy+loop://")
        assert isinstance(t, SpyTransport)
        async with t:
            await t.write(b"\x02AB\x03")
            await t.read()

    with caplog.at_level(logging.INFO, logger="drivers.spy"):
        asyncio.run(scenario())
    lines = [r.getMessage() for r in caplog.records]
    assert any(
        line.startswith("TX loop:// 0000  02 41 42 03") and "|.AB.|" in line for line in lines
    )
    assert any(line.startswith("RX loop:// 0000  02 41 42 03") for line in lines)
    assert any("may hold patient data" in line for line in lines)


@pytest.fixture
def pty_link(tmp_path: Path) -> tuple[int, Path]:
    master, slave = os.openpty()
    tty.setraw(slave)
    link = tmp_path / "ttyTEST"
    link.symlink_to(os.ttyname(slave))
    os.close(slave)
    return master, link


def test_serial_on_a_real_pty_reads_writes_and_sees_the_hang_up(pty_link: tuple[int, Path]) -> None:
    master, link = pty_link

    async def scenario() -> None:
        t = open_transport(f"serial://{link}?baudrate=9600&stopbits=2")
        async with t:
            os.write(master, b"from device")
            got = b""
            while len(got) < 11:
                got += await t.read(64, timeout=2)
            assert got == b"from device"
            await t.write(b"\x06")
            assert os.read(master, 10) == b"\x06"
            with pytest.raises(DeviceTimeoutError):
                await t.read(timeout=0.05)
            os.close(master)  # the cable is pulled
            with pytest.raises(TransientDeviceError, match="disconnected"):
                await t.read(timeout=2)

    asyncio.run(scenario())


def test_serial_open_of_a_missing_port_is_transient(tmp_path: Path) -> None:
    async def scenario() -> None:
        t = open_transport(f"serial://{tmp_path}/absent")
        with pytest.raises(TransientDeviceError, match="cannot open"):
            await t.open()
        assert not t.is_open

    asyncio.run(scenario())

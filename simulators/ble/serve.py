"""``python -m simulators.ble.serve``: a simulated blood-pressure monitor for another process.

Starts a :class:`~simulators.ble.link.VirtualRadio` and a
:data:`~simulators.ble.peripheral.BLOOD_PRESSURE_MONITOR` holding the ``--measurement`` values
(hex), then prints one JSON line per event on stdout, flushed:

- ``{"event": "ready", "hci": "tcp-client:127.0.0.1:PORT", "address": ..., "name": ...}``
  once a gateway can open ``hci`` (``BumbleBle(hci)``);
- ``{"event": "confirmed", "value": HEX}`` for each measurement the central confirmed;
- ``{"event": "write", "uuid": ..., "value": HEX}`` for each write by the central.

Runs until SIGTERM or SIGINT, then closes everything and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
import sys
from typing import Any

from simulators.ble.link import VirtualRadio
from simulators.ble.peripheral import BLOOD_PRESSURE_MONITOR, SimulatedPeripheral


def _emit(**event: Any) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


async def serve(measurements: list[bytes], name: str | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    profile = BLOOD_PRESSURE_MONITOR
    if name is not None:
        profile = dataclasses.replace(profile, name=name)
    async with VirtualRadio(peripherals=1) as radio:
        peripheral = SimulatedPeripheral(
            profile,
            radio.hci(0),
            measurements=measurements,
            on_confirmed=lambda value: _emit(event="confirmed", value=value.hex()),
            on_write=lambda uuid, value: _emit(event="write", uuid=uuid, value=value.hex()),
        )
        async with peripheral:
            _emit(
                event="ready",
                hci=radio.hci_transport,
                address=peripheral.address,
                name=profile.name,
            )
            await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulators.ble.serve", description=__doc__)
    parser.add_argument(
        "--measurement",
        action="append",
        default=[],
        type=bytes.fromhex,
        help="a stored Blood Pressure Measurement value, hex (repeatable, sent in order)",
    )
    parser.add_argument("--name", default=None, help="advertised local name")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.measurement, args.name))


if __name__ == "__main__":
    main()

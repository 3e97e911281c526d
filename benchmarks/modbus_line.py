"""One RS-485 line, three slaves, one of them silent for a while: what the others keep.

The production SharedLine + Poller over the pymodbus adapter against the simulated line (two
ptys at 19200 Bd) and a pymodbus RTU server. Prints, per unit, the good-poll rate before,
during and after the silence, the ratio during/before (issue #7: within 10 %), how many
attempts the silent unit cost and how long the line was held by requests.

    python -m benchmarks.modbus_line [--silent 60] [--period 0.5] [--timeout 0.3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from drivers.modbus.lines import open_client
from drivers.modbus.maps import load_map
from drivers.modbus.poller import Poller, PollSettings, PollStats
from simulators.modbus.dynamics import cabin_climate, fridge
from simulators.modbus.rtu_line import RtuLine
from simulators.modbus.server import ModbusSimServer, SimSlave


async def run(silent: float, period: float, timeout: float, before: float = 10.0) -> None:
    cabin, logger = load_map("xy-md02"), load_map("fridge-logger")
    slaves = [
        SimSlave(1, cabin, cabin_climate(seed=1)),
        SimSlave(2, cabin, cabin_climate(seed=2)),
        SimSlave(3, logger, fridge(seed=3)),
    ]
    good: dict[int, list[float]] = {s.unit: [] for s in slaves}

    def stamp(unit: int) -> Callable[[PollStats], None]:
        return lambda stats: good[unit].append(time.monotonic())

    with tempfile.TemporaryDirectory() as scratch:
        link = Path(scratch) / "rs485"
        async with RtuLine(link, baudrate=19200) as line, await ModbusSimServer.rtu(line, slaves):
            client = open_client(f"modbus-rtu://{link}?baudrate=19200")
            settings = PollSettings(period=period, timeout=timeout, retries=1, backoff_max=8.0)
            pollers = {
                s.unit: Poller(client, s.unit, s.regmap, settings, lambda v: None,
                               lambda e, st: None, on_good=stamp(s.unit))
                for s in slaves
            }  # fmt: skip
            tasks = [asyncio.create_task(p.run()) for p in pollers.values()]
            t0 = time.monotonic()
            await asyncio.sleep(before)
            line.silent.add(3)
            t1 = time.monotonic()
            await asyncio.sleep(silent)
            line.silent.discard(3)
            t2 = time.monotonic()
            await asyncio.sleep(before)
            t3 = time.monotonic()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.close()
    print(f"period {period} s, timeout {timeout} s, unit 3 silent {silent:.0f} s, 19200 Bd")
    print("unit  before/s  during/s  after/s  during/before")
    for unit, times in good.items():

        def rate(a: float, b: float, ts: list[float] = times) -> float:
            return sum(a <= t < b for t in ts) / (b - a)

        r0, r1, r2 = rate(t0 + period, t1), rate(t1, t2), rate(t2, t3)
        print(f"{unit:>4}  {r0:8.2f}  {r1:8.2f}  {r2:7.2f}  {r1 / r0 if r0 else 0:13.3f}")
    s3: PollStats = pollers[3].stats
    print(f"silent unit: {s3.timeouts} timed-out requests in {silent:.0f} s (its period alone"
          f" would have made {2 * silent / period:.0f}), {s3.failed} failed polls")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--silent", type=float, default=60.0)
    parser.add_argument("--period", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=0.3)
    args = parser.parse_args()
    asyncio.run(run(args.silent, args.period, args.timeout))


if __name__ == "__main__":
    main()

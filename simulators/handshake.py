"""The device side of the ENQ / NAK / ACK handshake, shared by the simulated RS-232 devices.

The simulated tonometer (simulators/ct80.py) and autorefractor (simulators/refractor.py) hold
their exams in memory and send the oldest one, again and again, until the gateway answers
``ACK nnnn`` naming it (drivers/devices/handshake.py is the gateway's side); NAK and ENQ only
make the device send it again at once. :class:`HandshakeDevice` holds that serving loop, the
Poisson arrival of patients and :meth:`~HandshakeDevice.run`; each simulator gives its exams,
its frames (with their faults) and its link (plugging and unplugging the cable).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from pathlib import Path
from typing import Generic, Protocol, TypeVar
from zoneinfo import ZoneInfo

from drivers.codec.framing import ACK, ENQ, NAK
from simulators.ledger import Ledger
from simulators.pty import PtyPort
from simulators.stamps import SecondClock


class Paced(Protocol):
    """What the serving loop reads of a scenario."""

    @property
    def patients_per_hour(self) -> float: ...


RecordT = TypeVar("RecordT")
ScenarioT = TypeVar("ScenarioT", bound=Paced)


class HandshakeDevice(Generic[RecordT, ScenarioT]):
    """A simulated device that holds its exams until the gateway acknowledges them.

    A subclass gives :meth:`new_exam`, :meth:`_frame`, :meth:`_ack_id` and :meth:`_link`.
    """

    def __init__(
        self,
        device_id: str,
        link: Path,
        scenario: ScenarioT,
        ledger: Ledger,
        timezone: str,
        rng: random.Random,
    ) -> None:
        self.device_id = device_id
        self.scenario = scenario
        self.ledger = ledger
        self.zone = ZoneInfo(timezone)
        self.rng = rng
        self.port = PtyPort(link)
        self.pending: deque[RecordT] = deque()
        self.produced = 0
        self.acked = 0
        self.sent_frames = 0
        self._producing = True
        self.clock = SecondClock(self.zone)
        self._exam_no = 0

    def stop_producing(self) -> None:
        self._producing = False

    def new_exam(self) -> RecordT:
        raise NotImplementedError

    def _frame(self, record: RecordT) -> bytes:
        raise NotImplementedError

    def _ack_id(self, record: RecordT) -> str:
        """The id an ACK names to release ``record``."""
        raise NotImplementedError

    async def _link(self) -> None:
        raise NotImplementedError

    async def _produce(self) -> None:
        rate = self.scenario.patients_per_hour / 3600.0
        while self._producing:
            await asyncio.sleep(self.rng.expovariate(rate))
            if self._producing:
                self.new_exam()

    async def _serve(self, ack_timeout: float) -> None:
        """One turn of the link: send the oldest exam and wait for its ACK (or hear ENQ)."""
        if not self.pending:
            await self._answer(timeout=0.2)  # nothing to send: still hear ENQ
            return
        if self.port.write(self._frame(self.pending[0])):
            self.sent_frames += 1
        reply = await self._answer(timeout=ack_timeout)
        # Only an ACK naming the record in hand releases it: a late ACK for an earlier
        # copy of the previous record must not release this one.
        if reply == self._ack_id(self.pending[0]):
            self.pending.popleft()
            self.acked += 1

    async def _answer(self, timeout: float) -> str | None:
        """Wait for ``ACK nnnn`` (returns nnnn), NAK or ENQ ("NAK"/"ENQ"); None on timeout."""
        deadline = time.monotonic() + timeout
        buf = bytearray()
        while (left := deadline - time.monotonic()) > 0:
            buf.extend(await self.port.read(left))
            while buf:
                if buf[0] == ACK:
                    if len(buf) < 5:
                        break
                    ack_id = bytes(buf[1:5]).decode("ascii", "replace")
                    del buf[:5]
                    return ack_id
                byte = buf.pop(0)
                if byte in (NAK, ENQ):
                    return "NAK" if byte == NAK else "ENQ"
        return None

    async def run(self) -> None:
        producer = asyncio.create_task(self._produce())
        try:
            await self._link()
        finally:
            producer.cancel()
            self.port.unplug()

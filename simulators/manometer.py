"""A simulated reference manometer (pressure calibrator/controller) on a pty, over a bench.

It answers the protocol of drivers/devices/manometer/codec.py (our SCPI-style command set,
parsed and answered through the production codec) from a :class:`~simulators.bench.
PneumaticBench`: a reading is the bench's pressure plus the instrument's own Gaussian noise
(``reading_noise_mmhg``), rounded to 0.01 mmHg (0.001 kPa); ``:SOUR:PRES:INL?`` is 1 when the
controller has held the pressure within 0.05 % of full scale of the setpoint for ``stable_s``
(the in-limits dwell of real controllers). It powers up in kPa, so a driver that does not set
its unit reads kPa. Errors go to a SCPI error queue (30 entries, the last replaced by -350
on overflow); an unknown query is queued as -113 and gets no reply, as on a SCPI instrument.

Faults: ``cable_connected = False`` is the RS-232 cable pulled at the instrument (the host's
adapter stays: commands are lost, nothing answers); ``port.unplug()`` is the USB adapter pulled.

It produces no measurements: ``produced`` and ``undelivered`` are always 0 (the runner's
``Simulated`` protocol), and :meth:`SimulatedManometer.run` returns once
:meth:`SimulatedManometer.stop_producing` was called (or when cancelled).
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from drivers.devices.manometer.codec import (
    MAX_LINE,
    ErrorEntry,
    Identity,
    ManometerCommandError,
    Query,
    ReplyValue,
    Setting,
    Unit,
    from_mmhg,
    take_line,
    to_mmhg,
)
from drivers.devices.manometer.instrument import (
    DATA_OUT_OF_RANGE,
    INPUT_BUFFER_OVERRUN,
    NO_ERROR,
    QUEUE_OVERFLOW,
    Command,
    encode_reply,
    parse_command,
)
from simulators.bench import PneumaticBench
from simulators.pty import PtyPort

log = logging.getLogger(__name__)

MAKER = "SANTEBUS-SIM"
FIRMWARE = "1.0.0"
#: SCPI-99: an error queue holds at least 2 entries; 30 is the common size
QUEUE_SIZE = 30
#: ``:SOUR:PRES:INL?`` band, as a share of full scale (0.05 %)
IN_LIMITS_SHARE = 0.0005


class ManometerScenario(BaseModel):
    """The reference manometer of a simulated calibration bench."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["manometer"] = "manometer"
    serial: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")] = "REF-SIM-0001"
    #: days from today to the instrument's certificate due date (negative: expired)
    due_in_days: Annotated[int, Field(ge=-3650, le=3650)] = 180
    #: its expanded uncertainty (k=2), mmHg
    uncertainty_mmhg: Annotated[float, Field(gt=0, le=10)] = 0.05
    #: leak of the sealed circuit (cuff, tubing, T-piece), mmHg per minute
    leak_mmhg_per_min: Annotated[float, Field(ge=0, le=600)] = 1.0
    #: the controller's pressure slew rate, mmHg per second
    slew_mmhg_per_s: Annotated[float, Field(gt=0, le=1000)] = 40.0

    def due(self, today: date) -> date:
        return today + timedelta(days=self.due_in_days)

    def bench(
        self, *, clock: Callable[[], float] = time.monotonic, seed: int = 0
    ) -> PneumaticBench:
        """A bench with this scenario's leak and slew (share it with the device under test)."""
        return PneumaticBench(
            leak_mmhg_per_min=self.leak_mmhg_per_min,
            slew_mmhg_per_s=self.slew_mmhg_per_s,
            clock=clock,
            seed=seed,
        )


class SimulatedManometer:
    """One simulated reference on a pty at ``link``, reading and driving ``bench``."""

    def __init__(
        self,
        link: Path,
        bench: PneumaticBench,
        *,
        serial: str = "REF-SIM-0001",
        due: date,
        uncertainty_mmhg: float = 0.05,
        reading_noise_mmhg: float = 0.01,
        full_scale: float = 400.0,
        stable_s: float = 1.0,
        seed: int = 0,
        device_id: str = "manometer",
    ) -> None:
        if full_scale <= 0 or uncertainty_mmhg < 0 or reading_noise_mmhg < 0 or stable_s < 0:
            raise ValueError("full scale must be > 0; uncertainty, noise, stable_s >= 0")
        self.device_id = device_id
        self.port = PtyPort(link)
        self.bench = bench
        self.identity = Identity(MAKER, f"RPC-{full_scale:g}", serial, FIRMWARE)
        self.due = due
        self.uncertainty_mmhg = uncertainty_mmhg
        self.reading_noise_mmhg = reading_noise_mmhg
        self.full_scale = full_scale
        self.stable_s = stable_s
        self.rng = random.Random(seed)
        self.unit = Unit.KPA  # power-on unit: the host must set its own
        self.setpoint = 0.0  # mmHg
        self.errors: deque[ErrorEntry] = deque()
        #: False: the RS-232 cable is off the instrument (commands lost, no replies)
        self.cable_connected = True
        self.commands = 0
        self.produced = 0
        self._producing = True

    @classmethod
    def from_scenario(
        cls,
        link: Path,
        bench: PneumaticBench,
        scenario: ManometerScenario,
        *,
        today: date,
        seed: int = 0,
        device_id: str = "manometer",
    ) -> SimulatedManometer:
        """The reference a scenario describes, on ``bench`` (e.g. from ``scenario.bench()``)."""
        return cls(
            link,
            bench,
            serial=scenario.serial,
            due=scenario.due(today),
            uncertainty_mmhg=scenario.uncertainty_mmhg,
            seed=seed,
            device_id=device_id,
        )

    @property
    def undelivered(self) -> int:
        return 0

    def stop_producing(self) -> None:
        self._producing = False

    # ----------------------------------------------------------------- protocol

    def handle(self, line: bytes) -> bytes | None:
        """The reply line to one message line (None: no reply), as the instrument acts on it."""
        self.commands += 1
        try:
            command = parse_command(line)
        except ManometerCommandError as exc:
            self.queue_error((exc.code, exc.text))
            return None
        if isinstance(command.header, Query):
            return self._answer(command.header)
        self._apply(command)
        return None

    def queue_error(self, entry: ErrorEntry) -> None:
        """Queue an error (SCPI: when full, the most recent entry becomes -350)."""
        log.debug("sim manometer error device=%s error=%s", self.device_id, entry)
        if len(self.errors) >= QUEUE_SIZE:
            self.errors[-1] = QUEUE_OVERFLOW
            return
        self.errors.append(entry)

    def reading_mmhg(self) -> float:
        """What the instrument reads now: the bench plus its own noise, rounded to 0.01."""
        noise = self.rng.gauss(0.0, self.reading_noise_mmhg) if self.reading_noise_mmhg else 0.0
        return round(self.bench.pressure() + noise, 2)

    def in_limits(self) -> bool:
        bench = self.bench
        if not bench.controlling or bench.target != self.setpoint:
            return False
        return bench.settled_for(IN_LIMITS_SHARE * self.full_scale) >= self.stable_s

    def _decimals(self, mmhg_decimals: int) -> int:
        return mmhg_decimals if self.unit is Unit.MMHG else mmhg_decimals + 1

    def _answer(self, query: Query) -> bytes:
        unit = self.unit
        if query is Query.PRESSURE:
            value = from_mmhg(self.reading_mmhg(), unit)
            return encode_reply(query, value, self._decimals(2))
        if query is Query.SETPOINT:
            return encode_reply(query, from_mmhg(self.setpoint, unit), self._decimals(2))
        if query is Query.CAL_UNCERTAINTY:
            return encode_reply(query, from_mmhg(self.uncertainty_mmhg, unit), self._decimals(3))
        if query is Query.ERROR:
            return encode_reply(query, self.errors.popleft() if self.errors else NO_ERROR)
        replies: dict[Query, ReplyValue] = {
            Query.IDN: self.identity,
            Query.UNIT: unit,
            Query.IN_LIMITS: self.in_limits(),
            Query.CAL_DATE: self.due,
        }
        return encode_reply(query, replies[query])

    def _apply(self, command: Command) -> None:
        header, value = command.header, command.value
        if header is Setting.UNIT and isinstance(value, Unit):
            self.unit = value
        elif header is Setting.SETPOINT and isinstance(value, float):
            mmhg = to_mmhg(value, self.unit)
            if not 0.0 <= mmhg <= self.full_scale:
                self.queue_error(DATA_OUT_OF_RANGE)
                return
            self.setpoint = mmhg
            self.bench.set_target(mmhg)
        elif header is Setting.OUTPUT and isinstance(value, bool):
            self.bench.control(value)
        elif header is Setting.VENT:
            self.bench.vent()

    # ----------------------------------------------------------------- link

    async def run(self) -> None:
        """Answer on the pty until :meth:`stop_producing` (or cancellation); then unplug."""
        self.port.plug()
        buffer = bytearray()
        try:
            while self._producing:
                data = await self.port.read(0.1)
                if not self.cable_connected:
                    buffer.clear()
                    continue
                buffer += data
                while (line := take_line(buffer)) is not None:
                    if not line.strip():
                        continue
                    reply = self.handle(line)
                    if reply is not None and not self.port.write(reply):
                        log.debug("sim manometer reply lost device=%s", self.device_id)
                if len(buffer) > MAX_LINE:
                    buffer.clear()
                    self.queue_error(INPUT_BUFFER_OVERRUN)
        finally:
            self.port.unplug()

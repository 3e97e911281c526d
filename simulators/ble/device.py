"""A simulated BLE health device that measures: scenario, clock, readings, ledger, faults.

:class:`SimulatedBleDevice` is one device of :data:`simulators.ble.profiles.PROFILES` on a
virtual radio: measurements arrive at random (Poisson, ``measurements_per_hour``), each drawn
and encoded by :mod:`simulators.ble.draws`, stamped by the device's own
:class:`~simulators.ble.clock.DeviceClock` (skewed or unset as the scenario says), handed to the
peripheral (indicated once a central subscribes; a glucose meter stores a record that the
gateway fetches through the RACP) and written to the ground-truth ledger, one line per
reading, with the *true* instant of the measurement, not the device's time stamp.

Faults from :class:`BleScenario`: garbled values (sent truncated before the real one, and
not in the ledger: nothing is lost), out of range for a while, bonding required, a glucose meter
dropping the link in the middle of a RACP transfer, and a clock that is skewed or not set.
The pulse oximeter has no Current Time Service: its clock stamps the spot-checks, but no
gateway can read or set it, so a skew given to it stays in its time stamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bumble.transport.common import TransportSink, TransportSource

from simulators.ble.clock import DeviceClock
from simulators.ble.draws import DRAWS, Drawn, Units
from simulators.ble.glucometer import Glucometer
from simulators.ble.peripheral import SimulatedPeripheral
from simulators.ble.profiles import PROFILES
from simulators.ledger import Ledger
from simulators.scenario import BleScenario

log = logging.getLogger(__name__)

#: LOINC code of each reading. An independent restatement of what the backend must receive
#: (FHIR Observation.code), written here apart from the gateway's own mapping so that the
#: end-to-end check of the ledger against the backend is a real cross-check.
LOINC: dict[str, str] = {
    "systolic": "8480-6",  # Systolic blood pressure
    "diastolic": "8462-4",  # Diastolic blood pressure
    "mean": "8478-0",  # Mean blood pressure
    "pulse": "8867-4",  # Heart rate
    "glucose": "15074-8",  # Glucose [Moles/volume] in Blood (also for mg/dL, as the gateway)
    "temperature": "8310-5",  # Body temperature
    "weight": "29463-7",  # Body weight
    "spo2": "2708-6",  # Oxygen saturation in Arterial blood
    "spo2-pulse": "8889-8",  # Heart rate by Pulse oximetry
}


class SimulatedBleDevice:
    """One simulated BLE health device; :meth:`run` until :meth:`stop_producing`, then drain.

    ``kind`` is a key of :data:`~simulators.ble.profiles.PROFILES`; ``hci_pair`` a peripheral
    controller of the virtual radio (:meth:`simulators.ble.link.VirtualRadio.hci`);
    ``address`` the random static address it advertises with; ``zone`` where the bus is.
    """

    def __init__(
        self,
        device_id: str,
        kind: str,
        address: str,
        hci_pair: tuple[TransportSource, TransportSink],
        scenario: BleScenario,
        ledger: Ledger,
        zone: ZoneInfo,
        rng: random.Random,
    ) -> None:
        if kind not in PROFILES:
            raise ValueError(f"{device_id}: no BLE device kind {kind!r} (known: {list(PROFILES)})")
        self.device_id = device_id
        self.kind = kind
        self.scenario = scenario
        self.ledger = ledger
        self.zone = zone
        self.rng = rng
        self._timing = random.Random(rng.random())
        self._units = Units(scenario.glucose_unit, scenario.weight_unit, scenario.temperature_unit)
        self.clock = DeviceClock(scenario.clock_skew_s, scenario.clock_unset, zone=zone)
        self.peripheral = SimulatedPeripheral(
            PROFILES[kind],
            hci_pair,
            address=address,
            on_confirmed=self._on_confirmed,
            clock=self.clock,
            bonding_required=scenario.bonding_required,
        )
        self.glucometer = (
            Glucometer(
                self.peripheral,
                disconnect_after=scenario.racp_disconnect_after,
                disconnects=scenario.racp_disconnects,
                on_reported=self._on_delivered,
            )
            if kind == "glucose"
            else None
        )
        #: readings written to the ledger
        self.produced = 0
        #: one flag per value handed to the peripheral, oldest first: True for a measurement,
        #: False for a garbled copy (confirmations come back in the same order)
        self._outgoing: deque[bool] = deque()
        self._producing = True
        #: set on what may end :meth:`run`: production stopped, a measurement delivered
        self._progress = asyncio.Event()

    @property
    def undelivered(self) -> int:
        """Measurements the gateway has not taken yet (unconfirmed, or never fully reported)."""
        if self.glucometer is not None:
            return self.glucometer.undelivered
        return sum(self._outgoing)

    def stop_producing(self) -> None:
        self._producing = False
        self._progress.set()

    def measure(self, at: datetime | None = None) -> Drawn:
        """Take one measurement at the true instant ``at`` (default: now); what was sent."""
        real = (at or self.clock.real_now()).astimezone(self.zone).replace(microsecond=0)
        sequence = self.glucometer.next_sequence_number if self.glucometer is not None else 0
        stamp = self.clock.at(real)
        drawn = DRAWS[self.kind](self.rng, stamp, self._units, sequence)
        garbled = self.rng.random() < self.scenario.malformed_rate
        for reading in drawn.readings:
            self.ledger.write(
                device=self.device_id,
                code=LOINC[reading.quantity],
                value=reading.value,
                unit=reading.unit,
                time=real.isoformat(),
                status="ok",
                # an unset clock stamps nothing: no collector can know when this was taken
                time_known=stamp is not None,
            )
        self.produced += len(drawn.readings)
        if self.glucometer is not None:
            self.glucometer.store(drawn.value, drawn.context, garbled=garbled)
        else:
            if garbled:
                self._outgoing.append(False)
                self.peripheral.malformed(drawn.value)
            self._outgoing.append(True)
            self.peripheral.send(drawn.value)
        return drawn

    def _on_confirmed(self, _value: bytes) -> None:
        if self._outgoing:
            self._outgoing.popleft()
        self._on_delivered()

    def _on_delivered(self) -> None:
        self._progress.set()

    async def _produce(self) -> None:
        rate = self.scenario.measurements_per_hour / 3600.0
        while self._producing:
            await asyncio.sleep(self._timing.expovariate(rate))
            if self._producing:
                self.measure()

    async def _wander(self) -> None:
        s = self.scenario
        while self._producing and s.out_of_range_every > 0:
            await asyncio.sleep(s.out_of_range_every)
            if self._producing:
                log.info("sim out of range device=%s for=%.1fs", self.device_id, s.out_of_range_for)
                await self.peripheral.out_of_range(s.out_of_range_for)
                log.info("sim back in range device=%s", self.device_id)

    async def run(self) -> None:
        """Advertise and measure until :meth:`stop_producing`, then until all is delivered."""
        spacing = timedelta(hours=1) / self.scenario.measurements_per_hour
        now = self.clock.real_now()
        for back in range(self.scenario.stored_at_start, 0, -1):
            self.measure(now - back * spacing)
        await self.peripheral.start()
        tasks = [asyncio.create_task(self._produce()), asyncio.create_task(self._wander())]
        try:
            while self._producing or self.undelivered:
                self._progress.clear()
                await self._progress.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.glucometer is not None:
                await self.glucometer.close()
            with contextlib.suppress(Exception):  # the radio may be gone already
                await self.peripheral.close()
            log.info(
                "sim ble device=%s produced=%d undelivered=%d",
                self.device_id,
                self.produced,
                self.undelivered,
            )

"""The BLE health-device driver: values from a :class:`~drivers.ble.link.BleLink` as deliveries.

Per connection:

1. **Clock** (Current Time Service 1.1 3.1): read the device's Current Time, if it has one,
   and measure its offset from the gateway clock (whole seconds: the device clock has that
   resolution). Every delivery carries the offset the device clock had when it stamped the
   record, so the daemon puts the true time on the Observation. An unset clock (Date Time
   "not known") or one off by more than ``clock_tolerance`` is set by writing Current Time
   when the characteristic is writable, but only once the stored records stamped with the old
   clock have arrived: after ``quiet`` seconds without a value, or after a RACP transfer.
2. **Subscribe** to the profile's measurement characteristic(s) (and, for glucose, the
   context and the Record Access Control Point).
3. **Indicating profiles** (blood pressure, thermometer, weight scale, pulse oximeter): one
   delivery per measurement value. The device deletes a stored measurement when its
   indication is confirmed (Core Vol 3 Part G 4.11.1), which the host stack does as soon as
   the value has been received, before the daemon commits it: a crash in that instant loses
   the measurement, a window the profiles leave no way to close (they have no application
   acknowledgement).
4. **Glucose** (Glucose Profile 1.0 4.x): "report stored records with sequence number >= cursor
   + 1", one delivery per record (a measurement merged with the context that follows it), the
   durable cursor advanced by each delivery's acknowledgement, i.e. after the commit. A meter
   that refuses the filter gets "report all records" and the gateway skips what it already
   has. Then the meter is asked again every ``racp_poll`` seconds while the link is up.

A value that does not parse is logged (characteristic, field, offset) and counted; the values
around it are delivered as usual.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from drivers.ble import readings
from drivers.ble.bleak_api import BleakError
from drivers.ble.cursor import RecordCursor
from drivers.ble.gatt import registry
from drivers.ble.gatt.clock import CurrentTime, encode_current_time, parse_current_time
from drivers.ble.gatt.glucose import (
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    GlucoseMerge,
    GlucoseRecord,
)
from drivers.ble.gatt.racp import (
    RacpGeneralResponse,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpResponseCode,
    encode_racp_request,
)
from drivers.ble.gatt.reader import GattParseError
from drivers.ble.link import BleLink
from drivers.ble.profiles import CURRENT_TIME, MODEL_NUMBER
from drivers.errors import TransientDeviceError
from drivers.readings import Delivery

log = logging.getLogger(__name__)

#: the value queued when the link drops, after every value received before it
_LOST = ("", b"", datetime.min)


@dataclass(frozen=True, slots=True)
class BleDriverSettings:
    #: write Current Time when the device clock is unset or off by more than the tolerance
    set_clock: bool = True
    clock_tolerance: float = 2.0
    #: seconds without a value after which stored records are taken to have all arrived
    quiet: float = 2.0
    #: seconds between two RACP requests for new glucose records while connected
    racp_poll: float = 30.0
    #: longest silence inside a RACP transfer before the link is dropped and retried
    racp_timeout: float = 30.0


@dataclass(slots=True)
class BleStats:
    """Counters kept across reconnects (exposed to health/metrics)."""

    values: int = 0
    malformed: int = 0
    clock_writes: int = 0
    racp_transfers: int = 0


async def _noop() -> None:
    return None


class BleDriver:
    """Deliveries from one connected health device; one instance per :class:`BleLink`."""

    def __init__(
        self,
        link: BleLink,
        device_id: str,
        now: Callable[[], datetime],
        settings: BleDriverSettings | None = None,
        cursor: RecordCursor | None = None,
        stats: BleStats | None = None,
    ) -> None:
        """``now()`` is the gateway's local wall time, naive, as device clocks keep it."""
        self.link = link
        self.device_id = device_id
        self.now = now
        self.settings = settings or BleDriverSettings()
        self.cursor = cursor
        self.stats = stats if stats is not None else BleStats()
        self.profile = link.settings.profile
        self.model = self.profile.model
        self.queue: asyncio.Queue[tuple[str, bytes, datetime]] = asyncio.Queue()
        link.received = self._received
        self._offset = 0.0
        self._clock_due = False
        self._refused: RacpGeneralResponse | None = None

    def _received(self, uuid: str, value: bytes) -> None:
        self.queue.put_nowait((uuid, value, self.now()))

    async def deliveries(self) -> AsyncIterator[Delivery]:
        """Yield deliveries until the link drops (then :class:`TransientDeviceError`)."""
        watcher = asyncio.create_task(self._watch_link())
        try:
            await self._setup()
            if self.profile.racp is not None:
                async for delivery in self._glucose():
                    yield delivery
            else:
                async for delivery in self._stream():
                    yield delivery
        except BleakError as exc:
            raise TransientDeviceError(f"{self.link.settings.address}: {exc}") from exc
        finally:
            watcher.cancel()

    async def _watch_link(self) -> None:
        await self.link.lost.wait()
        self.queue.put_nowait(_LOST)

    async def _setup(self) -> None:
        link = self.link
        if link.has(MODEL_NUMBER) is not None:
            raw = await link.read(MODEL_NUMBER)
            self.model = raw.decode("utf-8", "replace").strip("\x00 ") or self.model
        await self._read_clock()
        for uuid in self.profile.measurements:
            await link.subscribe(uuid)
        for extra in (self.profile.context, self.profile.racp):
            if extra is not None and link.has(extra) is not None:
                await link.subscribe(extra)

    async def _read_clock(self) -> None:
        characteristic = self.link.has(CURRENT_TIME)
        if characteristic is None:
            return
        try:
            current = parse_current_time(await self.link.read(CURRENT_TIME))
            device = current.exact()
            if device is not None and current.fractions256 == 0:
                # whole seconds only: the clock is on average half a second past its reading
                device += timedelta(seconds=0.5)
        except GattParseError as exc:
            log.warning("ble clock unreadable device=%s error=%s", self.device_id, exc)
            device = None
        if device is None:
            log.warning("ble device clock not set device=%s", self.device_id)
            self._offset = 0.0
        else:
            self._offset = float(round((device - self.now()).total_seconds()))
            log.info("ble device clock device=%s offset=%+.0fs", self.device_id, self._offset)
        wrong = device is None or abs(self._offset) > self.settings.clock_tolerance
        writable = "write" in characteristic.properties
        self._clock_due = wrong and writable and self.settings.set_clock

    async def _set_clock(self) -> None:
        self._clock_due = False
        await self.link.write(CURRENT_TIME, encode_current_time(CurrentTime.of(self.now())))
        self.stats.clock_writes += 1
        log.info("ble device clock set device=%s was_off_by=%+.0fs", self.device_id,
                 self._offset)  # fmt: skip
        self._offset = 0.0

    async def _next(self, timeout: float | None) -> tuple[str, bytes, datetime] | None:
        """The next value, ``None`` after ``timeout`` s of silence; raises once the link is lost."""
        try:
            item = await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None
        if item is _LOST:
            raise TransientDeviceError(f"{self.link.settings.address}: link lost")
        return item

    def _parse(self, uuid: str, value: bytes) -> object | None:
        self.stats.values += 1
        try:
            return registry.decode(uuid, value)[1]
        except GattParseError as exc:
            self.stats.malformed += 1
            log.warning(
                "ble malformed value device=%s characteristic=%s field=%s offset=%d reason=%s"
                " malformed_total=%d",
                self.device_id, exc.characteristic, exc.field, exc.offset, exc.reason,
                self.stats.malformed,
            )  # fmt: skip
            return None

    def _delivery(
        self,
        parsed: object,
        received: datetime,
        acknowledge: Callable[[], Awaitable[None]] | None = None,
        stored: bool = False,
    ) -> Delivery | None:
        """``stored``: the value was held by the device (RACP record, or the burst on connect)."""
        # a value without a device time stamp takes the reception time, given in the device's
        # time frame so that the same offset corrects every reading of the delivery
        in_device_frame = received + timedelta(seconds=self._offset)
        found = readings.readings(parsed, in_device_frame)
        if not found:
            return None
        return Delivery(
            readings=found,
            device_model=self.model,
            acknowledge=acknowledge if acknowledge is not None else _noop,
            clock_offset=self._offset,
            time_uncertainty=2.0,  # 1 s clock resolution + 1 s offset measurement
            # a live value without a time stamp was taken just now; a stored one, any time
            time_known=readings.stamped(parsed) or not stored,
        )

    async def _stream(self) -> AsyncIterator[Delivery]:
        # the values sent at once on subscription, until a quiet spell, are the stored ones
        burst = True
        while True:
            item = await self._next(self.settings.quiet if burst or self._clock_due else None)
            if item is None:
                burst = False
                if self._clock_due:
                    await self._set_clock()
                continue
            uuid, value, received = item
            parsed = self._parse(uuid, value)
            if parsed is None:
                continue
            if (delivery := self._delivery(parsed, received, stored=burst)) is not None:
                yield delivery

    # -- glucose ------------------------------------------------------------------------------

    async def _glucose(self) -> AsyncIterator[Delivery]:
        filtered = True
        while True:
            async for delivery in self._transfer(filtered):
                yield delivery
            if self._refused is not None and filtered:
                filtered = False  # the meter refuses "≥ N": fetch all, skip what we have
                continue
            if self._clock_due:
                await self._set_clock()
            # poll; the meter may also notify a new record by itself
            deadline = asyncio.get_running_loop().time() + self.settings.racp_poll
            while (left := deadline - asyncio.get_running_loop().time()) > 0:
                item = await self._next(left)
                if item is not None:
                    log.debug("ble unsolicited value device=%s uuid=%s", self.device_id, item[0])

    async def _transfer(self, filtered: bool) -> AsyncIterator[Delivery]:
        racp = self.profile.racp
        assert racp is not None
        have = self.cursor.sequence if self.cursor is not None else None
        if filtered and have is not None and have < 0xFFFF:
            request = RacpRequest(RacpOpCode.REPORT_STORED_RECORDS,
                                  RacpOperator.GREATER_THAN_OR_EQUAL, minimum=have + 1)  # fmt: skip
        else:
            request = RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.ALL_RECORDS)
        self._refused = None
        self.stats.racp_transfers += 1
        await self.link.write(racp, encode_racp_request(request))
        merge = GlucoseMerge()
        while True:
            item = await self._next(self.settings.racp_timeout)
            if item is None:
                raise TransientDeviceError(
                    f"{self.link.settings.address}: RACP transfer silent for"
                    f" {self.settings.racp_timeout:.0f} s"
                )
            uuid, value, received = item
            parsed = self._parse(uuid, value)
            done: tuple[GlucoseRecord, ...] = ()
            if isinstance(parsed, RacpGeneralResponse) or (
                isinstance(parsed, GlucoseMeasurement) and merge.waiting
            ):
                # the end of the transfer, or (GLS 1.0 3.x: a context follows its measurement
                # at once) a new measurement: the announced context never came
                done, _ = merge.flush()
                merge = GlucoseMerge(early=merge.early)
            if isinstance(parsed, GlucoseMeasurement | GlucoseMeasurementContext):
                merge, completed = merge.add(parsed)
                done += completed
            for record in done:
                if (d := self._record(record.measurement, received, have)) is not None:
                    yield d
            if isinstance(parsed, RacpGeneralResponse):
                self._answered(request, parsed)
                return

    def _record(
        self, m: GlucoseMeasurement, received: datetime, have: int | None
    ) -> Delivery | None:
        if have is not None and m.sequence_number <= have:
            return None  # already stored (a meter that ignored the filter)
        ack: Callable[[], Awaitable[None]] | None = None
        if self.cursor is not None:
            ack = functools.partial(_advance, self.cursor, m.sequence_number)
        delivery = self._delivery(m, received, ack, stored=True)
        if delivery is None and self.cursor is not None:
            self.cursor.advance(m.sequence_number)  # a control-solution test: nothing to store
        return delivery

    def _answered(self, request: RacpRequest, response: RacpGeneralResponse) -> None:
        code = response.response_code
        if code in (RacpResponseCode.SUCCESS, RacpResponseCode.NO_RECORDS_FOUND):
            log.debug("ble racp done device=%s response=%s", self.device_id, code.name)
            return
        log.warning("ble racp refused device=%s request=%s response=%s", self.device_id,
                    request.operator.name, code.name)  # fmt: skip
        unsupported = (RacpResponseCode.OPERATOR_NOT_SUPPORTED,
                       RacpResponseCode.OPERAND_NOT_SUPPORTED)  # fmt: skip
        if code in unsupported:
            self._refused = response


async def _advance(cursor: RecordCursor, sequence: int) -> None:
    cursor.advance(sequence)

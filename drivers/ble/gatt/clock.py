"""Date Time (0x2A08) and Current Time (0x2A2B): parsers, and the encoders the gateway writes.

Implements the Bluetooth "GATT Specification Supplement" (GSS; section numbers as in GSS v8,
they move between revisions, the characteristic name is the stable reference):

* GSS 3.70 Date Time (0x2A08): year uint16 (1582..9999, 0 = not known), month (1..12, 0 = not
  known), day (1..31, 0 = not known), hours, minutes, seconds, all uint8. It is also the Time
  Stamp field of the health measurements (bp.py, thermometer.py, weight.py), which read and
  write it through :meth:`Reader.date_time` / :func:`write_date_time` below.
* GSS 3.62 Current Time (0x2A2B): Exact Time 256 (GSS 3.90) = Day Date Time (GSS 3.72: Date Time
  + Day of Week, GSS 3.73: 1 = Monday .. 7 = Sunday, 0 = not known) + Fractions256 (1/256 s),
  then the Adjust Reason bit field (bit 0 manual update, 1 external reference, 2 change of time
  zone, 3 change of DST). Current Time Service 1.1 lets a client write it to set the clock.

Decisions, where the specifications leave room:

* A Date Time whose year, month or day is 0 is "not known" and becomes ``None`` (the rule of
  :meth:`Reader.date_time`), even when hours, minutes and seconds are set: without a date it is no
  instant, and a device sending it has an unset clock. An all-zero value is what encodes ``None``.
* A year 1..1581 is outside the GSS range and refused like any impossible date.
* RFU bits (Adjust Reason bits 4..7) are ignored on receipt and written as 0, the Bluetooth Core
  Specification's convention for "reserved for future use" (Vol 1, Part E). An RFU *value* of
  Day of Week (8..255) is kept as the bare int so that it stays observable; encoders refuse it,
  since a sender shall not use reserved values.
* The Day of Week a device reports is kept as reported, not checked against the date: CTS does
  not ask a client to, and a wrong weekday does not make the date unusable. Our encoder, which is
  the sender when the gateway sets a device clock, refuses a weekday that contradicts the date.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

from drivers.ble.gatt.reader import MAX_YEAR, MIN_YEAR, Reader, Writer


def check_date_time(value: datetime | None, what: str) -> None:
    """Raise ValueError unless ``value`` fits a Date Time field exactly."""
    if value is None:
        return
    if value.tzinfo is not None:
        # GSS Date Time carries no zone: a device clock is local wall-clock time
        raise ValueError(f"{what}: Date Time has no time zone, pass naive local time")
    if value.microsecond:
        raise ValueError(f"{what}: Date Time has whole seconds, got {value.microsecond} us")
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"{what}: year {value.year} outside {MIN_YEAR}..{MAX_YEAR}")


def write_date_time(writer: Writer, value: datetime | None, what: str) -> None:
    """Append a Date Time field (all zero for ``None``), refusing what does not fit."""
    check_date_time(value, what)
    writer.date_time(value)


# --------------------------------------------------------------------------- Date Time 0x2A08

DATE_TIME = "Date Time"


@dataclass(frozen=True, slots=True)
class DateTime:
    """A Date Time value: a naive local ``datetime``, or ``None`` when the device does not know."""

    time: datetime | None


def parse_date_time(data: bytes) -> DateTime:
    r = Reader(data, DATE_TIME)
    value = r.date_time("date_time")
    r.end()
    return DateTime(value)


def encode_date_time(value: DateTime) -> bytes:
    w = Writer()
    write_date_time(w, value.time, DATE_TIME)
    return w.bytes()


# --------------------------------------------------------------------------- Current Time 0x2A2B

CURRENT_TIME = "Current Time"


class DayOfWeek(IntEnum):
    """GSS 3.73 Day of Week (0 = not known is ``None``; 8..255 are RFU)."""

    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7


@dataclass(frozen=True, slots=True)
class AdjustReason:
    """Why the device's clock last changed (GSS 3.62, Adjust Reason)."""

    manual_time_update: bool = False
    external_reference_time_update: bool = False
    change_of_time_zone: bool = False
    change_of_dst: bool = False


@dataclass(frozen=True, slots=True)
class CurrentTime:
    """Exact Time 256 plus Adjust Reason.

    ``time`` holds whole seconds; ``fractions256`` the 1/256 s beyond them. ``day_of_week`` is
    ``None`` when not known and a bare int for an RFU code.
    """

    time: datetime | None
    day_of_week: DayOfWeek | int | None
    fractions256: int = 0
    adjust_reason: AdjustReason = field(default_factory=AdjustReason)

    @classmethod
    def of(cls, now: datetime, adjust_reason: AdjustReason | None = None) -> CurrentTime:
        """The value to write to a device for the naive local time ``now``."""
        check_date_time(now.replace(microsecond=0), CURRENT_TIME)
        return cls(
            time=now.replace(microsecond=0),
            day_of_week=DayOfWeek(now.isoweekday()),
            fractions256=now.microsecond * 256 // 1_000_000,  # floor: never ahead of ``now``
            adjust_reason=adjust_reason if adjust_reason is not None else AdjustReason(),
        )

    def exact(self) -> datetime | None:
        """``time`` plus the fractions, to the microsecond (rounded down)."""
        if self.time is None:
            return None
        return self.time + timedelta(microseconds=self.fractions256 * 1_000_000 // 256)


def _day_of_week(raw: int) -> DayOfWeek | int | None:
    if raw == 0:
        return None
    return DayOfWeek(raw) if raw <= DayOfWeek.SUNDAY else raw


def parse_current_time(data: bytes) -> CurrentTime:
    r = Reader(data, CURRENT_TIME)
    time = r.date_time("exact_time_256.date_time")
    day_of_week = _day_of_week(r.u8("exact_time_256.day_of_week"))
    fractions = r.u8("exact_time_256.fractions256")
    raw_reason = r.u8("adjust_reason")  # bits 4..7 RFU: ignored
    r.end()
    reason = AdjustReason(*(bool(raw_reason >> bit & 1) for bit in range(4)))
    return CurrentTime(time, day_of_week, fractions, reason)


def encode_current_time(value: CurrentTime) -> bytes:
    w = Writer()
    write_date_time(w, value.time, CURRENT_TIME)
    dow = value.day_of_week
    if dow is not None and not DayOfWeek.MONDAY <= dow <= DayOfWeek.SUNDAY:
        raise ValueError(f"{CURRENT_TIME}: day of week {dow} is reserved (GSS 3.73)")
    if dow is not None and value.time is not None and dow != value.time.isoweekday():
        day = DayOfWeek(dow).name
        raise ValueError(f"{CURRENT_TIME}: {day} is not the weekday of {value.time:%Y-%m-%d}")
    if not 0 <= value.fractions256 <= 255:
        raise ValueError(f"{CURRENT_TIME}: fractions256 {value.fractions256} outside 0..255")
    reason = value.adjust_reason
    bits = (
        reason.manual_time_update,
        reason.external_reference_time_update,
        reason.change_of_time_zone,
        reason.change_of_dst,
    )
    raw_reason = sum(1 << bit for bit, is_set in enumerate(bits) if is_set)
    w.u8(0 if dow is None else int(dow)).u8(value.fractions256).u8(raw_reason)
    return w.bytes()


CHARACTERISTICS: dict[int, tuple[str, Callable[[bytes], object], Callable[[Any], bytes]]] = {
    0x2A08: (DATE_TIME, parse_date_time, encode_date_time),
    0x2A2B: (CURRENT_TIME, parse_current_time, encode_current_time),
}

"""The clock inside a simulated BLE device, and its Current Time characteristic (0x2A2B).

A health device stamps its measurements with its own wall clock: naive local time (GSS Date
Time has no zone), whole seconds, often wrong (:attr:`DeviceClock` ``skew_s``) or never set
after a battery change (``unset``). The gateway reads it and sets it through the Current Time
Service 1.1 (CTS), which is what :func:`current_time_value` and :func:`write_current_time` serve
on the wire with the production codec (:mod:`drivers.ble.gatt.clock`):

* a read returns Exact Time 256 + Adjust Reason (GSS Current Time); an unset clock reads as
  Date Time all zeros (year, month, day 0 = "not known", GSS Date Time) with Day of Week 0
  ("not known", GSS Day of Week) and no fractions;
* a write of a valid Current Time sets the clock (from then on it runs from the written time);
  a value of the wrong length is refused with Invalid Attribute Value Length (0x0D, Core Vol 3
  Part F 3.4.1.1), and one the clock cannot take (an impossible or "not known" date) with the
  CTS application error 0x80 "Data field ignored" (CTS 1.1, Current Time characteristic
  behaviour; Zephyr's CTS server answers the same): :class:`CurrentTimeWriteError`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from drivers.ble.gatt.clock import (
    AdjustReason,
    CurrentTime,
    encode_current_time,
    parse_current_time,
)
from drivers.ble.gatt.reader import GattParseError

#: Current Time: Date Time (7) + Day of Week (1) + Fractions256 (1) + Adjust Reason (1)
CURRENT_TIME_LENGTH = 10
#: ATT Invalid Attribute Value Length (Core Vol 3 Part F 3.4.1.1)
INVALID_ATTRIBUTE_VALUE_LENGTH = 0x0D
#: CTS 1.1 application error "Data field ignored"
DATA_FIELD_IGNORED = 0x80


class DeviceClock:
    """A device's wall clock: real local time plus a skew, or not set at all.

    ``zone`` is where the device sits (None: this computer's local zone); ``skew_s`` how far
    its clock is ahead (negative: behind) of the true local time; ``unset`` a clock never set
    (the device has no date until a central writes one).
    """

    def __init__(
        self, skew_s: float = 0.0, unset: bool = False, *, zone: tzinfo | None = None
    ) -> None:
        self.zone = zone
        self._offset: timedelta | None = None if unset else timedelta(seconds=skew_s)
        self.adjust_reason = AdjustReason()

    @property
    def is_set(self) -> bool:
        return self._offset is not None

    def real_now(self) -> datetime:
        """The true local time where the device is, tz-aware (not what the device shows)."""
        return datetime.now(self.zone).astimezone(self.zone)

    def exact_at(self, real: datetime) -> datetime | None:
        """What the device clock showed at the true instant ``real``, to the microsecond."""
        if self._offset is None:
            return None
        return real.astimezone(self.zone).replace(tzinfo=None) + self._offset

    def at(self, real: datetime) -> datetime | None:
        """The device's time stamp for the true instant ``real``: whole seconds, or None."""
        exact = self.exact_at(real)
        return None if exact is None else exact.replace(microsecond=0)

    def now(self) -> datetime | None:
        """The device's naive local wall time now, whole seconds; None while unset."""
        return self.at(self.real_now())

    def set(self, value: datetime, adjust_reason: AdjustReason | None = None) -> None:
        """Set the clock to the naive local ``value`` (a central's write): it runs on from it."""
        if value.tzinfo is not None:
            raise ValueError("a device clock holds naive local time")
        self._offset = value - self.real_now().replace(tzinfo=None)
        self.adjust_reason = adjust_reason if adjust_reason is not None else AdjustReason()


def current_time_value(clock: DeviceClock) -> bytes:
    """The Current Time characteristic value of ``clock`` now (all "not known" while unset)."""
    exact = clock.exact_at(clock.real_now())
    if exact is None:
        return encode_current_time(CurrentTime(None, None))
    return encode_current_time(CurrentTime.of(exact, clock.adjust_reason))


class CurrentTimeWriteError(ValueError):
    """A write of Current Time the device refuses; ``att_error`` is the ATT error code."""

    def __init__(self, att_error: int, reason: str) -> None:
        super().__init__(f"Current Time refused (ATT error 0x{att_error:02X}): {reason}")
        self.att_error = att_error


def write_current_time(clock: DeviceClock, value: bytes) -> CurrentTime:
    """Set ``clock`` from a written Current Time value; what was written, parsed.

    Raises :class:`CurrentTimeWriteError` for a value the clock cannot take (module docstring).
    The Day of Week and the Adjust Reason are taken as written: CTS does not ask the server to
    check the weekday against the date.
    """
    if len(value) != CURRENT_TIME_LENGTH:
        raise CurrentTimeWriteError(
            INVALID_ATTRIBUTE_VALUE_LENGTH, f"{len(value)} octets, not {CURRENT_TIME_LENGTH}"
        )
    try:
        written = parse_current_time(value)
    except GattParseError as error:
        raise CurrentTimeWriteError(DATA_FIELD_IGNORED, str(error)) from error
    exact = written.exact()
    if exact is None:
        raise CurrentTimeWriteError(DATA_FIELD_IGNORED, "the date is 'not known'")
    clock.set(exact, written.adjust_reason)
    return written

"""The Measurement: a device reading made clinical (coded, time-zoned, identified)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

#: namespace of message ids (uuid5); changing it would break de-duplication at the backend
MESSAGE_ID_NAMESPACE = uuid.UUID("6f1d3c52-3f0e-5a52-9b3a-5a4e7462e5b1")


def message_id(device_id: str, serial_number: str, record_key: str, quantity: str) -> str:
    """A message id stable across re-sends: same device, same record, same quantity.

    Derived from device identity + the record's identity (which a retransmitted record shares)
    + the quantity, so the backend can de-duplicate whatever path a reading took.
    """
    return str(
        uuid.uuid5(MESSAGE_ID_NAMESPACE, f"{device_id}|{serial_number}|{record_key}|{quantity}")
    )


#: FHIR R4 data-absent-reason codes a device value without a number maps to
Absent = Literal["error", "not-a-number", "positive-infinity", "negative-infinity"]


class Part(BaseModel):
    """One member of a panel (e.g. the systolic pressure of a blood-pressure reading)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    quantity: str
    value: float | None
    unit: str
    interpretation: Literal["H", "L", "N"] | None = None
    absent: Absent | None = None
    decimals: int | None = None
    absent_text: str | None = None


class Measurement(BaseModel):
    """One clinical value ready for encoding. ``value`` is None when the device gave none."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    msg_id: str
    bus_id: str
    device_id: str
    device_model: str
    device_serial: str
    quantity: str
    value: float | None
    unit: str
    effective: AwareDatetime
    device_status: Literal["ok", "unreliable", "over-range"]
    components: tuple[float | None, ...] = ()
    #: the pseudonymous visit the reading is bound to; None when bound to none (never guessed)
    subject: str | None = None
    #: why the reading is only preliminary (a gate's reason: outside the device's operating
    #: conditions, calibration lapsed...); empty when nothing flagged it
    flags: tuple[str, ...] = ()
    #: H / L / N against the reference range (edge/pipeline/validate.py), None if none applies
    interpretation: Literal["H", "L", "N"] | None = None
    #: the device's current calibration record (calibration/records.py) and its last valid day
    calibration_id: str | None = None
    calibration_due: date | None = None
    #: why ``value`` is None (FHIR data-absent-reason); None: "error" unless it is a panel
    absent: Absent | None = None
    #: a panel's members (codes.PANELS): the Observation's components; empty otherwise
    parts: tuple[Part, ...] = ()
    #: seconds the device clock was ahead of the gateway's when it stamped the reading;
    #: ``effective`` is already corrected by it (0: not measured, or no correction)
    clock_offset: float = 0.0
    #: decimals the device gave ``value`` (FHIR R4: the precision of a decimal is significant)
    decimals: int | None = None
    #: how the value was obtained, when not the quantity's usual method (codes.QuantityCode)
    method: str | None = None
    #: signal-quality index 0..1 of a value the gateway derived from a raw signal
    quality: float | None = None
    #: why ``value`` is None, for a person; None: the text of ``absent``
    absent_text: str | None = None


def localize(device_time: datetime, zone: str) -> datetime:
    """Attach the device's configured zone to its naive clock (aware times pass through)."""
    from zoneinfo import ZoneInfo

    if device_time.tzinfo is not None:
        return device_time
    # fold=0: during the autumn DST overlap the earlier instant is taken (documented limit)
    return device_time.replace(tzinfo=ZoneInfo(zone))

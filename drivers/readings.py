"""Value objects a driver hands to its caller: plain readings, no FHIR, no patient data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

import numpy as np
import numpy.typing as npt


class ReadingStatus(StrEnum):
    """How the device qualified the value."""

    OK = "ok"
    #: the device flagged the value as unreliable (e.g. a CT-80 reading in parentheses)
    UNRELIABLE = "unreliable"
    #: above the device's measuring range (CT-80 ``OVER``); there is no number
    OVER_RANGE = "over-range"


@dataclass(frozen=True, slots=True)
class DeviceReading:
    """One quantity measured by one device.

    ``quantity`` is a device-neutral name (``iop.right``); mapping it to a clinical code is the
    daemon's job. ``device_time`` is the device's own clock, naive when the device sends no zone.
    ``record_key`` identifies the device record the reading came from, identical when the device
    retransmits the same record, so the daemon can derive a message id that is stable across
    re-sends.
    """

    quantity: str
    value: float | None
    unit: str
    device_time: datetime
    record_key: str
    status: ReadingStatus = ReadingStatus.OK
    components: tuple[float | None, ...] = ()
    #: why ``value`` is None when the device sent an IEEE 11073-20601 special value instead of
    #: a number: "nan", "nres", "+inf" or "-inf" (drivers/codec/ieee11073.py); "refused" when
    #: the gateway's signal analysis refused the raw record the value was to come from
    special: str | None = None
    #: what the device said about this measurement that makes it doubtful (e.g. "Cuff fit too
    #: loose"); published as notes on a preliminary Observation
    remarks: tuple[str, ...] = ()
    #: decimals the device gave the value (IEEE 11073 exponent -2: 72.50 has 2); FHIR R4
    #: decimals keep their precision (2.00 is not 2.0). None: as the number prints
    decimals: int | None = None
    #: how the value was obtained when it is not the quantity's usual method (e.g. computed by
    #: the gateway from a raw cuff-pressure record); published as the Observation's method
    method: str | None = None
    #: the signal-quality index (0..1) of a value the gateway derived from a raw signal
    quality: float | None = None
    #: why ``value`` is None, for a person (with ``special = "refused"``: the analysis's reason)
    absent_text: str | None = None


#: what a raw-signal front-end measured: a cuff-pressure deflation record (NIBP module) or one
#: air puff's plenum pressure and applanation light (tonometer front-end)
RecordingKind = Literal["oscillometric-bp", "airpuff-iop"]


@dataclass(frozen=True, slots=True, eq=False)
class RawRecording:
    """The samples of one measurement by a raw-signal front-end; the daemon derives readings.

    ``channels`` hold the front-end's own units (ADC counts): the daemon applies the device's
    sensor calibration, then the signal core (edge/signal/). ``record_key`` and ``device_time``
    play the part they play in :class:`DeviceReading`. ``site`` is the eye (``right`` /
    ``left``) of a tonometer puff. ``refused`` is the front-end's own reason the recording is
    unusable (aborted, over-pressure...): the daemon publishes the attempt without numbers.
    """

    kind: RecordingKind
    record_key: str
    device_time: datetime
    #: sampling rate, Hz
    fs: float
    channels: Mapping[str, npt.NDArray[np.float64]]
    site: str | None = None
    refused: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """Readings from one device record, plus the callbacks that answer the device.

    The caller commits the readings durably and only then awaits :meth:`acknowledge`; a crash in
    between leaves the record unacknowledged on the device, which sends it again.
    """

    readings: tuple[DeviceReading, ...]
    device_model: str
    acknowledge: Callable[[], Awaitable[None]] = field(repr=False)
    #: device clock minus gateway clock in seconds, as the driver measured it (0: unknown)
    clock_offset: float = 0.0
    #: how far the corrected device time may be from the true measurement time, seconds
    #: (clock resolution plus the error of ``clock_offset``); visit binding widens by it
    time_uncertainty: float = 1.0
    #: False when the device gave no time for a measurement it had stored (its clock was not
    #: set): the reception time stands in, and nobody can tell when it was really taken
    time_known: bool = True
    #: raw recordings from which the daemon derives more readings (edge/pipeline/derive.py)
    recordings: tuple[RawRecording, ...] = ()

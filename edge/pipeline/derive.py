"""Readings the gateway derives from raw recordings: sensor calibration, then the signal core.

A raw-signal front-end (the NIBP module, the air-puff tonometer front-end) delivers samples in
its own ADC counts (drivers.readings.RawRecording). Here, per recording:

1. the device's sensor calibration turns pressure counts into mmHg (:class:`SensorCalibration`:
   the model of its current calibration record, fitted by a technician against a reference
   manometer, while that record is valid; the configured nominal relation otherwise);
2. the signal core (edge/signal/) estimates the clinical values, or refuses the record;
3. the result becomes ordinary :class:`DeviceReading` objects under the recording's record key,
   which the ingest validates, binds to the visit and commits like any device's readings.

A refused record (or one the front-end itself aborted) is never dropped: its quantities are
published without numbers (FHIR dataAbsentReason ``error``, the reason as text) so the attempt
is on the patient's record, and a ``signal.refused`` event tells the station to measure again.

The raw record of a refused measurement is kept (:class:`RefusedArchive`) as the CSV that
``santebus analyze`` reads, so a technician can see why (``--plot``) without the patient.

The analysis runs in a worker thread (:func:`derived`): a 60 s record takes tens of
milliseconds on a Raspberry Pi, long enough to stall MQTT keep-alives and the other devices if
it ran on the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

import numpy as np

from calibration.models import Model
from calibration.records import CalibrationBook, CalibrationError
from drivers.readings import Delivery, DeviceReading, RawRecording
from edge.signal.filters import FloatArray
from edge.signal.oscillometry import analyze_bp
from edge.signal.results import FLAG_TEXT, BpEstimate, IopEstimate, Refusal
from edge.signal.tonometry import analyze_iop

log = logging.getLogger(__name__)

BP_METHOD = "Oscillometry: the gateway's analysis of the raw cuff-pressure record"
IOP_METHOD = (
    "Air-puff tonometry: the gateway's analysis of the applanation signal, IOPg = (P1 + P2) / 2"
)


@dataclass(frozen=True, slots=True)
class SensorCalibration:
    """A pressure transducer's calibration, counts -> mmHg.

    ``model`` is the model of the device's current calibration record (calibration/models.py,
    fitted by ``santebus calibrate run``); without one, the configured nominal relation
    ``mmHg = gain * counts + offset`` applies. ``source`` names which (the record id, or
    "config"), for the log.
    """

    gain: float
    offset: float = 0.0
    model: Model | None = None
    source: str = "config"

    def apply(self, counts: FloatArray) -> FloatArray:
        x = np.asarray(counts, dtype=np.float64)
        if self.model is not None:
            return np.asarray(self.model.apply(x), dtype=np.float64)
        out: FloatArray = x * self.gain + self.offset
        return out


#: the last unreadable-record error logged per device serial
_REPORTED: dict[str, str] = {}


def active_sensor(
    nominal: SensorCalibration, book: CalibrationBook | None, serial: str, on: date
) -> SensorCalibration:
    """The calibration for a recording taken ``on``.

    The current record's model while it is valid (not expired, not failed), else the nominal
    one; the reading is then flagged by the ingest's calibration check (edge/pipeline/ingest.py).
    """
    if book is None:
        return nominal
    try:
        status = book.status(serial, on)
    except CalibrationError as exc:
        # once per fault, not per live-pressure chunk (ten a second while a cuff deflates)
        if _REPORTED.get(serial) != str(exc):
            _REPORTED[serial] = str(exc)
            log.error("calibration record unreadable serial=%s error=%s", serial, exc)
        return nominal
    _REPORTED.pop(serial, None)
    record = status.record
    if status.validity != "valid" or record is None or record.model is None:
        return nominal
    try:
        model = Model.from_dict(record.model)
    except ValueError as exc:
        log.error("calibration model unusable record=%s error=%s", record.id, exc)
        return nominal
    return dataclasses.replace(nominal, model=model, source=record.id)


class RefusedArchive:
    """The newest ``keep`` refused records of one device, as CSV files in ``folder``.

    ``t,p`` (s, mmHg) for a cuff record and ``t,pressure,light`` for an air puff: the input of
    ``santebus analyze bp|iop``. Pressures are calibrated; the files hold no patient data (the
    record key is hashed into the name). A full disk loses the copy, never the reading.
    """

    def __init__(self, folder: Path, keep: int) -> None:
        self.folder = folder
        self.keep = keep

    def add(self, rec: RawRecording, pressure: FloatArray) -> Path | None:
        if self.keep == 0:
            return None
        digest = hashlib.sha256(rec.record_key.encode()).hexdigest()[:12]
        name = "bp" if rec.kind == "oscillometric-bp" else f"iop-{rec.site}"
        path = self.folder / f"{rec.device_time:%Y%m%dT%H%M%S}-{name}-{digest}.csv"
        t = np.arange(len(pressure)) / rec.fs
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if rec.kind == "oscillometric-bp":
                columns, header = np.column_stack([t, pressure]), "t,p"
            else:
                light = np.asarray(rec.channels["light"], dtype=np.float64)
                columns, header = np.column_stack([t, pressure, light]), "t,pressure,light"
            tmp = path.with_suffix(".tmp")
            np.savetxt(tmp, columns, fmt="%.6g", delimiter=",", header=header, comments="")
            tmp.replace(path)
            for old in sorted(self.folder.glob("*.csv"))[: -self.keep]:
                old.unlink()
        except OSError as exc:
            log.warning("refused record not archived path=%s error=%s", path, exc)
            return None
        return path


@dataclass(frozen=True, slots=True)
class Outcome:
    """The readings derived from one recording, and the refusal if there was one."""

    readings: tuple[DeviceReading, ...]
    refusal: Refusal | None
    seconds: float
    #: the calibrated pressure the analysis saw (kept for a refused record)
    pressure: FloatArray


def _reading(
    rec: RawRecording,
    quantity: str,
    value: float | None,
    unit: str,
    decimals: int,
    method: str,
    quality: float | None,
    remarks: tuple[str, ...],
    absent: str | None,
) -> DeviceReading:
    return DeviceReading(
        quantity=quantity,
        value=None if value is None else round(value, decimals),
        unit=unit,
        device_time=rec.device_time,
        record_key=rec.record_key,
        special="refused" if value is None else None,
        remarks=remarks,
        decimals=decimals,
        method=method,
        quality=quality,
        absent_text=absent,
    )


def _bp(rec: RawRecording, result: BpEstimate | Refusal) -> tuple[DeviceReading, ...]:
    members = (("bp.systolic", "mmHg"), ("bp.diastolic", "mmHg"), ("bp.mean", "mmHg"))
    if isinstance(result, Refusal):
        remarks: tuple[str, ...] = (
            f"No blood pressure: the cuff record was refused ({result.reason}).",
        )
        absent = f"Refused by the gateway's signal analysis: {result.reason}"
        return tuple(
            _reading(rec, q, None, unit, 0, BP_METHOD, None, remarks, absent)
            for q, unit in (*members, ("pulse.rate", "/min"))
        )
    remarks = tuple(FLAG_TEXT.get(flag, flag) for flag in result.flags)
    values = (result.systolic, result.diastolic, result.mean)
    method = f"{BP_METHOD} ({result.method})"
    # whole mmHg and beats per minute, as sphygmomanometers display them (ISO 81060-2)
    out = [
        _reading(rec, q, v, unit, 0, method, result.quality, remarks, None)
        for (q, unit), v in zip(members, values, strict=True)
    ]
    out.append(
        _reading(rec, "pulse.rate", result.pulse_rate, "/min", 0, method, result.quality,
                 remarks, None)
    )  # fmt: skip
    return tuple(out)


def _iop(rec: RawRecording, result: IopEstimate | Refusal) -> tuple[DeviceReading, ...]:
    eye = rec.site if rec.site in ("right", "left") else None
    if eye is None:  # a driver bug, not patient data: say which record
        raise ValueError(f"tonometer recording {rec.record_key} names no eye (site={rec.site!r})")
    quantities = (f"iop.{eye}", f"iopcc.{eye}", f"ch.{eye}")
    if isinstance(result, Refusal):
        remarks: tuple[str, ...] = (
            f"No pressure: the air-puff record was refused ({result.reason}).",
        )
        absent = f"Refused by the gateway's signal analysis: {result.reason}"
        return tuple(
            _reading(rec, q, None, "mmHg", 1, IOP_METHOD, None, remarks, absent) for q in quantities
        )
    remarks = tuple(FLAG_TEXT.get(flag, flag) for flag in result.flags)
    values = (result.iopg, result.iopcc, result.ch)
    return tuple(
        _reading(rec, q, v, "mmHg", 1, IOP_METHOD, result.quality, remarks, None)
        for q, v in zip(quantities, values, strict=True)
    )


R = TypeVar("R", BpEstimate, IopEstimate)


def _guarded(rec: RawRecording, analyse: Callable[[], R | Refusal]) -> R | Refusal:
    if rec.refused is not None:
        return Refusal("device-aborted", f"the device aborted the measurement: {rec.refused}")
    try:
        return analyse()
    except Exception as exc:
        # A fault in the analysis must not block the device: its record would be sent again
        # and fail again for ever. The attempt is published without numbers, the raw record
        # is archived for the technician, and the traceback goes to the log.
        log.exception("signal analysis failed record=%s", rec.record_key)
        return Refusal("analysis-error", f"the analysis failed ({type(exc).__name__})")


def derive(rec: RawRecording, sensor: SensorCalibration) -> Outcome:
    """The readings of one recording (pure computation: safe to run in a worker thread)."""
    started = time.perf_counter()
    pressure = sensor.apply(rec.channels["pressure"])
    result: BpEstimate | IopEstimate | Refusal
    if rec.kind == "oscillometric-bp":
        bp = result = _guarded(rec, lambda: analyze_bp(pressure, rec.fs))
        readings = _bp(rec, bp)
    else:
        light = np.asarray(rec.channels["light"], dtype=np.float64)
        iop = result = _guarded(rec, lambda: analyze_iop(pressure, light, rec.fs))
        readings = _iop(rec, iop)
    refusal = result if isinstance(result, Refusal) else None
    return Outcome(readings, refusal, time.perf_counter() - started, pressure)


async def derived(
    deliveries: AsyncIterator[Delivery],
    device_id: str,
    sensor: SensorCalibration | Callable[[RawRecording], SensorCalibration],
    on_refusal: Callable[[RawRecording, Refusal], None] | None = None,
    archive: RefusedArchive | None = None,
) -> AsyncIterator[Delivery]:
    """``deliveries`` with each recording replaced by the readings derived from it.

    ``sensor`` is the calibration, or a function giving the one for each recording (the
    device's calibration record valid on the day it was taken).
    """
    async for delivery in deliveries:
        if not delivery.recordings:
            yield delivery
            continue
        readings = list(delivery.readings)
        for rec in delivery.recordings:
            calibration = sensor if isinstance(sensor, SensorCalibration) else sensor(rec)
            outcome = await asyncio.to_thread(derive, rec, calibration)
            readings += outcome.readings
            if outcome.refusal is not None:
                log.warning(
                    "recording refused device=%s record=%s code=%s reason=%r",
                    device_id,
                    rec.record_key,
                    outcome.refusal.code,
                    outcome.refusal.reason,
                )
                if archive is not None:
                    await asyncio.to_thread(archive.add, rec, outcome.pressure)
                if on_refusal is not None:
                    on_refusal(rec, outcome.refusal)
            else:
                log.info(
                    "recording analysed device=%s record=%s kind=%s samples=%d took_ms=%.0f"
                    " calibration=%s",
                    device_id,
                    rec.record_key,
                    rec.kind,
                    len(rec.channels["pressure"]),
                    outcome.seconds * 1000,
                    calibration.source,
                )
        yield dataclasses.replace(delivery, readings=tuple(readings), recordings=())

"""Running a calibration procedure for a configured device and making its record.

The composition of issue #8's parts: the device's transport from the gateway config, the
reference instrument's from the command line, the procedure (calibration/procedures), the fit
and its uncertainty (calibration/models.py), the record (calibration/records.py). The verdict:
every point within the tolerance after adjustment (ILAC-G8 simple acceptance, see
calibration/models.py) and every check passed. A failed calibration is recorded too: the
daemon then flags (or withholds) the device's readings until a passing one replaces it.
"""

from __future__ import annotations

import importlib.metadata
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from calibration.certificate import CalibrationPoint, CheckResult
from calibration.models import CalibrationFitError, Model, evaluate, fit
from calibration.procedures import nibp
from calibration.procedures.base import Check, Collected, Operator, ProcedureAbortedError
from calibration.records import CalibrationBook, CalibrationRecord
from drivers.devices.manometer import Manometer
from drivers.devices.nibp.service import NibpService
from drivers.transport import open_transport
from edge.config import EdgeConfig, NibpDevice
from edge.pipeline.derive import SensorCalibration, active_sensor

#: the procedures ``santebus calibrate run`` knows, with the device kinds they apply to
PROCEDURES: dict[str, tuple[str, str]] = {
    "nibp-transducer": (
        "nibp",
        "NIBP cuff-pressure transducer against a reference pressure controller: static points,"
        " leak, over-pressure",
    ),
}


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What the technician chose on the command line."""

    technician: str
    reference_url: str
    valid_days: int = 365
    plan: nibp.NibpPlan = field(default_factory=nibp.NibpPlan)


def record_checks(collected: Collected) -> tuple[CheckResult, ...]:
    """A procedure's checks as the record stores them (a check without a value stores 0)."""
    return tuple(
        CheckResult(
            name=c.name, value=c.value if c.value is not None else 0.0, limit=c.limit,
            unit=c.unit, passed=c.passed, detail=c.detail[:200],
        )
        for c in collected.checks
    )  # fmt: skip


def software_version() -> str:
    """The gateway software that performs a procedure (it goes into the record)."""
    try:
        return f"santebus-edge {importlib.metadata.version('santebus-edge')}"
    except importlib.metadata.PackageNotFoundError:  # a source tree that was not installed
        return "santebus-edge (not installed)"


def today(config: EdgeConfig) -> date:
    """The bus's local date (validity dates are local days)."""
    return datetime.now(ZoneInfo(config.gateway.timezone)).date()


async def run_nibp(
    config: EdgeConfig, device_id: str, options: RunOptions, op: Operator
) -> CalibrationRecord:
    """Calibrate the NIBP module ``device_id``; returns the (unsaved) record."""
    device = config.devices[device_id]
    if not isinstance(device, NibpDevice):
        raise ProcedureAbortedError(f"{device_id} is a {device.kind} device, not an NIBP module")
    day = today(config)
    book = CalibrationBook(config.calibration_dir)
    nominal = SensorCalibration(device.pressure_gain, device.pressure_offset)
    as_found = active_sensor(nominal, book, device.serial_number, day)
    async with Manometer(open_transport(options.reference_url)) as ref:
        ident = await ref.identify()
        cert = await ref.certificate()
        op.say(
            f"reference {ident.maker} {ident.model} serial {ident.serial}, certificate due"
            f" {cert.due}, U = {cert.uncertainty_mmhg:g} mmHg (k=2)"
        )
        if cert.due < day:
            raise ProcedureAbortedError(
                f"the reference's own certificate expired on {cert.due}: have the reference"
                " calibrated before using it"
            )
        async with open_transport(device.transport) as link, NibpService(link) as service:
            op.say(f"{device_id} in service mode; as found: {as_found.source} calibration")
            collected = await nibp.run(ref, service, options.plan, op)
    return _nibp_record(
        device_id, device, collected, as_found, options, ident.serial, cert.due,
        cert.uncertainty_mmhg, day,
    )  # fmt: skip


def _nibp_record(
    device_id: str,
    device: NibpDevice,
    collected: Collected,
    as_found: SensorCalibration,
    options: RunOptions,
    reference_id: str,
    reference_due: date,
    reference_u: float,
    day: date,
) -> CalibrationRecord:
    raw = [p.raw for p in collected.points]
    ref = [p.reference for p in collected.points]
    found = [float(v) for v in as_found.apply(raw)]  # type: ignore[arg-type]
    plan = options.plan
    model: Model | None
    try:
        model = fit("linear", raw, ref)
        left = [float(model.apply(c)) for c in raw]
        gain = abs(model.to_dict()["coefficients"][1])
        stats = evaluate(
            model, raw, ref, reference_expanded=reference_u, resolution=gain,
            tolerance=plan.tolerance,
        )  # fmt: skip
        errors, passed_points = list(stats.errors), stats.passed
        uncertainty: float | None = stats.expanded
    except CalibrationFitError as exc:
        # no usable relation (e.g. the transducer does not rise with pressure): judged as found
        model, left, uncertainty = None, [math.nan] * len(raw), None
        errors = [f - r for f, r in zip(found, ref, strict=True)]
        passed_points = False
        collected.checks.append(Check("fit", None, 0.0, "", False, f"no calibration fitted: {exc}"))
    points = tuple(
        CalibrationPoint(
            reference=round(r, 3),
            raw=round(c, 2),
            as_found=round(f, 3),
            as_left=None if math.isnan(a) else round(a, 3),
            error=round(e, 3),
        )
        for r, c, f, a, e in zip(ref, raw, found, left, errors, strict=True)
    )
    checks = record_checks(collected)
    passed = passed_points and all(c.passed for c in checks)
    now = datetime.now(ZoneInfo("UTC"))
    return CalibrationRecord(
        id=f"CAL-{device.serial_number}-{now:%Y%m%dT%H%M%S}",
        device_serial=device.serial_number,
        device_model=f"NIBP module ({device_id})",
        kind="calibration",
        performed_at=now,
        valid_from=day,
        valid_until=day + timedelta(days=options.valid_days - 1),  # valid_days days, inclusive
        result="pass" if passed else "fail",
        technician=options.technician,
        reference_id=reference_id,
        reference_due=reference_due,
        points=points,
        model=None if model is None else model.to_dict(),
        unit="mmHg",
        raw_unit="counts",
        tolerance=plan.tolerance,
        max_error=round(max(abs(e) for e in errors), 3),
        uncertainty_k2=None if uncertainty is None else round(uncertainty, 3),
        checks=checks,
        software_version=software_version(),
        procedure="nibp-transducer",
    )

"""Running the verification procedures (tonometer, Modbus temperature) and making their records.

The companions of edge/calibrate_runs.py's NIBP calibration, composed the same way: the
device's transport from the gateway config, the procedure (calibration/procedures/tonometer.py,
thermometer.py), the verdict and its uncertainty (calibration/models.evaluate with no model:
nothing is adjusted, the error is the reading minus the reference), the record
(calibration/records.py, ``kind = "verification"``). The verdict is ILAC-G8 simple acceptance
as for a calibration: every point within the tolerance and every check passed. A failed
verification is recorded too, and the daemon then treats the device as failed.

The expanded uncertainty of a verification (k = 2): the reference's own (its certificate's
expanded uncertainty / k), the device's resolution (GUM F.2.2.1) and, since each point's reading
is a mean, the largest experimental standard deviation of such a mean over the points,
``s / sqrt(n)`` (GUM 4.2.3), root-sum-squared.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from calibration.certificate import CalibrationPoint
from calibration.models import K, evaluate
from calibration.procedures import thermometer, tonometer
from calibration.procedures.base import Collected, Operator, ProcedureAbortedError
from calibration.records import CalibrationRecord
from drivers.devices.ct80 import Ct80Driver
from drivers.modbus.errors import ModbusFrameError, ModbusTimeoutError
from drivers.modbus.lines import open_client
from drivers.modbus.maps import RegisterMap
from drivers.modbus.port import RegisterClient
from drivers.modbus.registers import Block
from drivers.readings import Delivery, ReadingStatus
from drivers.transport import open_transport
from edge.calibrate_runs import PROCEDURES as NIBP_PROCEDURES
from edge.calibrate_runs import record_checks, software_version, today
from edge.config import Ct80Device, EdgeConfig
from edge.config_modbus import ModbusDevice

#: every procedure ``santebus calibrate run`` knows: name -> (device kind, what it does)
PROCEDURES: dict[str, tuple[str, str]] = {
    **NIBP_PROCEDURES,
    tonometer.NAME: (
        "ct80",
        "CT-80 tonometer verification on model eyes of known IOP (default 10, 20, 35 mmHg),"
        " repeated measurements on each: error of the mean, repeatability",
    ),
    thermometer.NAME: (
        "modbus",
        "two-point check of a Modbus temperature sensor (a map with a temperature point)"
        " against a reference thermometer, an ice bath and a warm bath",
    ),
}

#: the reference ids recorded when ``--reference-id`` is not given
DEFAULT_REFERENCE_ID = {tonometer.NAME: "model-eyes", thermometer.NAME: "manual"}


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    """What ``santebus calibrate run`` passes to a verification."""

    technician: str
    #: the reference instrument's id for the record (the model-eye set, the thermometer)
    reference_id: str
    #: thermometer: ``manual://`` (typed) or ``manual://?values=...`` (scripted)
    reference_url: str = "manual://"
    valid_days: int = 365
    tonometer_plan: tonometer.TonometerPlan = field(default_factory=tonometer.TonometerPlan)
    thermometer_plan: thermometer.ThermometerPlan = field(
        default_factory=thermometer.ThermometerPlan
    )
    #: asks the technician for the reference thermometer's reading (None: nobody to ask)
    ask: Callable[[str], float] | None = None


# --------------------------------------------------------------------------- the verdict


def verification_record(
    *,
    serial: str,
    device_model: str,
    procedure: str,
    collected: Collected,
    tolerance: float,
    reference_expanded: float,
    resolution: float,
    unit: str,
    technician: str,
    reference_id: str,
    day: date,
    valid_days: int,
    now: datetime,
) -> CalibrationRecord:
    """The (unsaved) record of a verification: errors, uncertainty, verdict. Pure."""
    if not collected.points:
        raise ProcedureAbortedError("no point was measured")
    readings = [p.raw for p in collected.points]
    refs = [p.reference for p in collected.points]
    stats = evaluate(
        None, readings, refs, reference_expanded=reference_expanded, resolution=resolution,
        tolerance=tolerance,
    )  # fmt: skip
    # Type A (GUM 4.2.3): each point's reading is a mean of n; its standard deviation s / sqrt(n)
    u_mean = max(p.raw_sd / math.sqrt(p.samples) for p in collected.points)
    expanded = K * math.sqrt(stats.u_combined**2 + u_mean**2)
    points = tuple(
        CalibrationPoint(reference=round(r, 3), raw=round(x, 3), error=round(e, 3))
        for r, x, e in zip(refs, readings, stats.errors, strict=True)
    )
    checks = record_checks(collected)
    # judged on the stored (rounded) errors, so that the record agrees with itself
    passed = all(abs(p.error) <= tolerance for p in points) and all(c.passed for c in checks)
    return CalibrationRecord(
        id=f"VER-{serial}-{now:%Y%m%dT%H%M%S}",
        device_serial=serial,
        device_model=device_model[:64],
        kind="verification",
        performed_at=now,
        valid_from=day,
        valid_until=day + timedelta(days=valid_days - 1),  # valid_days days, inclusive
        result="pass" if passed else "fail",
        technician=technician,
        reference_id=reference_id,
        reference_due=None,
        points=points,
        model=None,
        unit=unit,
        raw_unit=unit,
        tolerance=tolerance,
        max_error=max(abs(p.error) for p in points),
        uncertainty_k2=round(expanded, 3),
        checks=checks,
        software_version=software_version(),
        procedure=procedure,
    )


# --------------------------------------------------------------------------- tonometer


class Ct80Exams:
    """The :class:`~calibration.procedures.tonometer.Tonometer` port on a Ct80Driver."""

    def __init__(self, deliveries: AsyncIterator[Delivery]) -> None:
        self._deliveries = deliveries
        #: the model name the device gave in its last record
        self.device_model: str | None = None

    async def next_exam(self) -> tonometer.Exam:
        delivery = await anext(self._deliveries)
        self.device_model = delivery.device_model or self.device_model
        right = next((r for r in delivery.readings if r.quantity == "iop.right"), None)
        stamps = [r.device_time for r in delivery.readings]
        usable = right is not None and right.status == ReadingStatus.OK and right.value is not None
        return tonometer.Exam(
            right=right.value if usable and right is not None else None,
            right_status=str(right.status) if right is not None else "absent",
            taken_at=stamps[0] if stamps else None,
            acknowledge=delivery.acknowledge,
        )


async def run_tonometer(
    config: EdgeConfig, device_id: str, options: VerifyOptions, op: Operator
) -> CalibrationRecord:
    """Verify the CT-80 ``device_id`` on model eyes; returns the (unsaved) record."""
    device = config.devices[device_id]
    if not isinstance(device, Ct80Device):
        raise ProcedureAbortedError(f"{device_id} is a {device.kind} device, not a CT-80")
    zone = ZoneInfo(config.gateway.timezone)
    day = today(config)
    # the CT-80 stamps its records with its naive local clock
    started = datetime.now(zone).replace(tzinfo=None)
    plan = options.tonometer_plan
    async with open_transport(device.transport) as link:
        deliveries = Ct80Driver(link, device_id).deliveries()
        exams = Ct80Exams(deliveries)
        try:
            collected = await tonometer.run(exams, plan, op, started=started)
        finally:
            aclose = getattr(deliveries, "aclose", None)  # an async generator: finish it
            if aclose is not None:
                await aclose()
    return verification_record(
        serial=device.serial_number,
        device_model=f"{exams.device_model or 'CT-80'} tonometer ({device_id})",
        procedure=tonometer.NAME,
        collected=collected,
        tolerance=plan.tolerance,
        reference_expanded=plan.reference_expanded,
        resolution=plan.resolution,
        unit="mmHg",
        technician=options.technician,
        reference_id=options.reference_id,
        day=day,
        valid_days=options.valid_days,
        now=datetime.now(ZoneInfo("UTC")),
    )


# --------------------------------------------------------------------------- thermometer


def temperature_block(regmap: RegisterMap) -> tuple[Block, str]:
    """The read that fetches the map's ``temperature`` point, and that point's name."""
    for block in regmap.blocks():
        for point in block.points:
            if point.quantity == "temperature":
                return block, point.name
    raise ProcedureAbortedError(f"register map {regmap.name!r} has no temperature point")


class ModbusTemperature:
    """The :class:`~calibration.procedures.thermometer.Sensor` port on a Modbus unit.

    A timeout or a garbled answer is retried (``retries`` more times), as the poller does; an
    exception response or a dead line ends the verification (the CLI says which).
    """

    def __init__(
        self, client: RegisterClient, device: ModbusDevice, retries: int | None = None
    ) -> None:
        self.client = client
        self.unit = device.unit
        self.timeout = device.timeout_s
        self.retries = device.retries + 2 if retries is None else retries
        self.block, self.point = temperature_block(device.register_map())

    async def _read(self) -> list[int]:
        b = self.block
        for _ in range(self.retries):
            try:
                return await self.client.read(
                    self.unit, b.table, b.address, b.count, timeout=self.timeout
                )
            except (ModbusTimeoutError, ModbusFrameError):
                continue
        return await self.client.read(self.unit, b.table, b.address, b.count, timeout=self.timeout)

    async def temperature(self) -> float:
        value = self.block.decode(await self._read())[self.point]
        if not math.isfinite(value):
            raise ProcedureAbortedError(f"the sensor reports {value} (a faulty probe?)")
        return value


class PromptedReference:
    """``manual://``: the technician types the reference thermometer's reading."""

    def __init__(self, ask: Callable[[str], float]) -> None:
        self.ask = ask

    async def reading(self, n: int, total: int, where: str) -> float:
        text = f"Point {n} of {total}: the reference thermometer's reading now (°C)"
        # the prompt blocks on stdin: in a thread, so the event loop is not held meanwhile
        return await asyncio.to_thread(self.ask, text)


def reference_for(url: str, ask: Callable[[str], float] | None, points: int) -> (
    thermometer.Reference
):  # fmt: skip
    """The reference thermometer of ``--reference``; ReferenceUrlError saying what is wrong."""
    values = thermometer.parse_manual_url(url)
    if values is None:
        if ask is None:
            raise thermometer.ReferenceUrlError(
                "manual:// asks the technician for each reading: without a terminal (--yes)"
                " give them as manual://?values=V1,V2"
            )
        return PromptedReference(ask)
    if len(values) != points:
        raise thermometer.ReferenceUrlError(
            f"manual:// gives {len(values)} reference values for {points} points"
        )
    return thermometer.ScriptedReference(values)


async def run_thermometer(
    config: EdgeConfig, device_id: str, options: VerifyOptions, op: Operator
) -> CalibrationRecord:
    """Two-point check of the Modbus temperature sensor ``device_id``; the (unsaved) record."""
    device = config.devices[device_id]
    if not isinstance(device, ModbusDevice):
        raise ProcedureAbortedError(f"{device_id} is a {device.kind} device, not a Modbus unit")
    plan = options.thermometer_plan
    try:
        reference = reference_for(options.reference_url, options.ask, len(plan.points))
    except thermometer.ReferenceUrlError as exc:
        raise ProcedureAbortedError(str(exc)) from exc
    regmap = device.register_map()
    block, name = temperature_block(regmap)
    point = next(p for p in block.points if p.name == name)
    day = today(config)
    client = open_client(device.transport)
    try:
        sensor = ModbusTemperature(client, device)
        collected = await thermometer.run(sensor, reference, plan, op)
    finally:
        await client.close()
    serial = device.serial_number or device_id
    return verification_record(
        serial=serial,
        device_model=f"{regmap.name} temperature sensor ({device_id})",
        procedure=thermometer.NAME,
        collected=collected,
        tolerance=plan.tolerance,
        reference_expanded=plan.reference_expanded,
        resolution=plan.resolution if plan.resolution is not None else abs(point.scale),
        unit="Cel",
        technician=options.technician,
        reference_id=options.reference_id,
        day=day,
        valid_days=options.valid_days,
        now=datetime.now(ZoneInfo("UTC")),
    )

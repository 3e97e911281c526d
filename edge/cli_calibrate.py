"""``santebus calibrate``: technicians calibrate and verify devices, the daemon enforces it.

``list`` shows each device's current calibration and the days it has left, and the procedures;
``run PROCEDURE --device ID [--reference URL]`` runs a bench procedure (prompts and progress
bars for a person, ``--yes`` for a script), stores the record (append-only, sealed with its
sha256) and renders its report; ``show`` / ``verify`` / ``report`` work on a stored record.
Exit status: 0 pass or valid, 1 fail or invalid, 2 usage, 78 config error.

The procedures (edge/calibrate_more.PROCEDURES): ``nibp-transducer`` (a calibration against the
pressure controller at ``--reference``, required), ``tonometer-model-eyes`` (a verification on
model eyes, ``--levels`` and ``--repeats``; the model eyes are the reference, named with
``--reference-id``) and ``modbus-temperature-2pt`` (a verification against a reference
thermometer read by the technician: ``--reference manual://``, the default, prompts for each
reading; ``manual://?values=V1,V2`` scripts them, as ``--yes`` requires).
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from calibration import report
from calibration.procedures import thermometer, tonometer
from calibration.procedures.base import Operator, ProcedureAbortedError, ScriptedOperator
from calibration.procedures.nibp import NibpPlan
from calibration.records import CalibrationBook, CalibrationError, CalibrationRecord, days_left
from drivers.errors import DriverError
from edge.calibrate_check import consistency
from edge.calibrate_console import TerminalOperator, console, summary
from edge.calibrate_more import (
    DEFAULT_REFERENCE_ID,
    PROCEDURES,
    VerifyOptions,
    reference_for,
    run_thermometer,
    run_tonometer,
)
from edge.calibrate_runs import RunOptions, run_nibp, today
from edge.cli_outbox import common_options, json_option, load_or_exit
from edge.config import EdgeConfig
from edge.config_imaging import RetinographDevice
from edge.config_modbus import ModbusDevice


def _book(config: EdgeConfig) -> CalibrationBook:
    return CalibrationBook(config.calibration_dir)


@click.group("calibrate")
def calibrate() -> None:
    """Calibrate and verify the bus's devices against reference instruments."""


@calibrate.command("list")
@common_options
@json_option
def list_devices(config_path: Path, overrides: tuple[str, ...], as_json: bool) -> None:
    """Each device's current calibration, its validity today and the days it has left."""
    config = load_or_exit(config_path, overrides)
    book, day = _book(config), today(config)
    rows: list[dict[str, object]] = []
    for device_id, device in config.devices.items():
        if isinstance(device, RetinographDevice):
            continue  # image quality is checked per photograph (edge/imaging), not calibrated
        if isinstance(device, ModbusDevice):
            if not _verifiable(device):
                continue  # nothing a procedure checks: the unit's telemetry is not certified
            serial, required = device.serial_number or device_id, False
        else:
            serial, required = device.serial_number, device.calibration_required
        try:
            status = book.status(serial, day)
        except CalibrationError as exc:
            rows.append({"device": device_id, "serial": serial,
                         "validity": "unreadable", "error": str(exc)})  # fmt: skip
            continue
        r = status.record
        rows.append({
            "device": device_id, "kind": device.kind, "serial": serial,
            "record": r.id if r else None, "result": r.result if r else None,
            "valid_until": r.valid_until.isoformat() if r else None,
            "days_left": days_left(r, day) if r else None, "validity": status.validity,
            "required": required,
        })  # fmt: skip
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, sort_keys=True))
        return
    table = Table("device", "kind", "serial", "record", "result", "valid until", "days left",
                  "status")  # fmt: skip
    for row in rows:
        style = {"valid": "green", "missing": "yellow"}.get(str(row["validity"]), "red")
        table.add_row(
            *(str(row.get(k) if row.get(k) is not None else "-")
              for k in ("device", "kind", "serial", "record", "result", "valid_until",
                        "days_left")),
            f"[{style}]{row['validity']}[/{style}]",
        )  # fmt: skip
    console.print(table)
    for name, (kind, text) in PROCEDURES.items():
        console.print(f"procedure [bold]{name}[/bold] ({kind} devices): {text}")


def _verifiable(device: ModbusDevice) -> bool:
    """A Modbus unit with a temperature point (modbus-temperature-2pt verifies it)."""
    return any(p.quantity == "temperature" for p in device.register_map().points)


def _mmhg_list(
    what: str, low: float, high: float, example: str, at_least: int = 1, closed: bool = True
) -> Callable[[click.Context, click.Parameter, str | None], tuple[float, ...] | None]:
    """A click callback: distinct mmHg values separated by commas, each within low..high.

    ``closed`` False excludes the bounds themselves.
    """

    def inside(v: float) -> bool:
        return low <= v <= high if closed else low < v < high

    def parse(ctx: click.Context, param: click.Parameter, value: str | None) -> (
        tuple[float, ...] | None
    ):  # fmt: skip
        if value is None:
            return None
        try:
            values = tuple(float(v) for v in value.split(","))
        except ValueError:
            raise click.BadParameter(f"mmHg values separated by commas, e.g. {example}") from None
        if not all(math.isfinite(v) and inside(v) for v in values):
            raise click.BadParameter(f"{what}s are mmHg between {low:g} and {high:g}, got {value}")
        if len(set(values)) != len(values) or len(values) < at_least:
            need = f"at least {at_least} distinct {what}s" if at_least > 1 else f"each {what} once"
            raise click.BadParameter(f"{need}, got {value}")
        return values

    return parse


_levels = _mmhg_list("model-eye level", 0.0, 100.0, "10,20,35", closed=False)
_points = _mmhg_list("static point", 0.0, 300.0, "0,100,200,250", at_least=3)


def _ask_float(text: str) -> float:
    while True:
        value = float(click.prompt(text, type=float))
        if math.isfinite(value):
            return value
        click.echo("a number, please")


Job = Callable[[Operator], Awaitable[CalibrationRecord]]

#: the options without a default, each taken by some procedures only
_OPTIONAL = ("levels", "repeats", "reading_timeout", "reference_id", "reference_uncertainty",
             "points")  # fmt: skip
#: the options each procedure takes besides the common ones (the others are refused)
_OWN_OPTIONS: dict[str, tuple[str, ...]] = {
    "nibp-transducer": ("--points",),
    tonometer.NAME: ("--levels", "--repeats", "--reading-timeout", "--reference-id",
                     "--reference-uncertainty"),
    thermometer.NAME: ("--reference-id", "--reference-uncertainty"),
}  # fmt: skip


def _nibp_job(config: EdgeConfig, device_id: str, reference_url: str | None,
              options: dict[str, Any]) -> Job:  # fmt: skip
    if reference_url is None:
        raise click.UsageError(
            "nibp-transducer needs --reference: the reference pressure controller's"
            " transport, e.g. serial:///dev/ttyUSB1"
        )
    plan = replace(NibpPlan(), leak_s=options["leak_seconds"], sample_s=options["sample_seconds"])
    if options["points"] is not None:
        plan = replace(plan, points=options["points"])
    run_options = RunOptions(options["technician"], reference_url, options["valid_days"], plan)
    return lambda op: run_nibp(config, device_id, run_options, op)


def _tonometer_job(config: EdgeConfig, device_id: str, reference_url: str | None,
                   options: dict[str, Any]) -> Job:  # fmt: skip
    if reference_url is not None:
        raise click.UsageError(
            f"{tonometer.NAME} takes no --reference: the model eyes are the reference (name the"
            " set with --reference-id)"
        )
    default = tonometer.TonometerPlan()
    try:
        plan = replace(
            default,
            levels=options["levels"] or default.levels,
            repeats=options["repeats"] or default.repeats,
            reading_timeout=options["reading_timeout"] or default.reading_timeout,
            reference_expanded=options["reference_uncertainty"] or 0.0,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    run_options = VerifyOptions(
        options["technician"], options["reference_id"] or DEFAULT_REFERENCE_ID[tonometer.NAME],
        valid_days=options["valid_days"], tonometer_plan=plan,
    )  # fmt: skip
    return lambda op: run_tonometer(config, device_id, run_options, op)


def _thermometer_job(config: EdgeConfig, device_id: str, reference_url: str | None,
                     options: dict[str, Any]) -> Job:  # fmt: skip
    device = config.devices[device_id]
    if isinstance(device, ModbusDevice) and not _verifiable(device):
        raise click.UsageError(f"{device_id}'s register map has no temperature point")
    url = reference_url or "manual://"
    ask = None if options["yes"] else _ask_float
    plan = thermometer.ThermometerPlan(reference_expanded=options["reference_uncertainty"] or 0.0)
    try:
        reference_for(url, ask, len(plan.points))  # refused before the bench starts
    except thermometer.ReferenceUrlError as exc:
        raise click.UsageError(f"--reference: {exc}") from exc
    run_options = VerifyOptions(
        options["technician"], options["reference_id"] or DEFAULT_REFERENCE_ID[thermometer.NAME],
        url, options["valid_days"], thermometer_plan=plan, ask=ask,
    )  # fmt: skip
    return lambda op: run_thermometer(config, device_id, run_options, op)


_JOBS: dict[str, Callable[[EdgeConfig, str, str | None, dict[str, Any]], Job]] = {
    "nibp-transducer": _nibp_job,
    tonometer.NAME: _tonometer_job,
    thermometer.NAME: _thermometer_job,
}


@calibrate.command("run")
@click.argument("procedure", type=click.Choice(sorted(PROCEDURES)))
@click.option("--device", "device_id", required=True, help="Device id in the config.")
@click.option("--reference", "reference_url", default=None,
              help="nibp-transducer (required): the pressure controller's transport, e.g."
                   " serial:///dev/ttyUSB1. modbus-temperature-2pt: manual:// (the technician"
                   " types the reference thermometer's readings; the default) or"
                   " manual://?values=0.05,25.10 (scripted, in order).")  # fmt: skip
@click.option("--reference-id", default=None,
              help="The reference for the record: the model-eye set (tonometer-model-eyes,"
                   " default model-eyes), the reference thermometer (modbus-temperature-2pt,"
                   " default manual).")  # fmt: skip
@click.option("--technician", default="technician", show_default=True)
@click.option("--yes", is_flag=True, help="No prompts (scripted bench, CI).")
@click.option("--leak-seconds", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="nibp-transducer: duration of the leak test.")  # fmt: skip
@click.option("--sample-seconds", type=click.FloatRange(min=0.5), default=2.0, show_default=True,
              help="nibp-transducer: averaging window at each static point.")  # fmt: skip
@click.option("--points", callback=_points, default=None, metavar="MMHG,MMHG,...",
              help="nibp-transducer: static points [default: 0,50,100,150,200,250].")  # fmt: skip
@click.option("--levels", callback=_levels, default=None, metavar="MMHG,MMHG,...",
              help="tonometer-model-eyes: the model eyes' IOPs in the order measured"
                   " [default: 10,20,35].")  # fmt: skip
@click.option("--repeats", type=click.IntRange(2, 20), default=None,
              help="tonometer-model-eyes: measurements on each model eye"
                   " [default: 3].")  # fmt: skip
@click.option("--reading-timeout", type=click.FloatRange(min=1), default=None,
              help="tonometer-model-eyes: seconds to wait for each measurement"
                   " [default: 120].")  # fmt: skip
@click.option("--reference-uncertainty", type=click.FloatRange(min=0), default=None,
              help="Verifications: the expanded uncertainty (k = 2) on the reference's own"
                   " certificate, in mmHg (model eyes) or °C (thermometer) [default: 0, not"
                   " stated].")  # fmt: skip
@click.option("--valid-days", type=click.IntRange(1, 3660), default=365, show_default=True)
@common_options
def run(procedure: str, device_id: str, reference_url: str | None, config_path: Path,
        overrides: tuple[str, ...], **options: Any) -> None:  # fmt: skip
    """Run PROCEDURE on a device, store its record, render its report."""
    config = load_or_exit(config_path, overrides)
    if device_id not in config.devices:
        raise click.UsageError(f"no device {device_id!r} in the config")
    kind = PROCEDURES[procedure][0]
    if config.devices[device_id].kind != kind:
        raise click.UsageError(f"{procedure} applies to {kind} devices; {device_id} is not one")
    flags = {name: f"--{name.replace('_', '-')}" for name in _OPTIONAL}
    stray = [flags[n] for n in _OPTIONAL
             if options[n] is not None and flags[n] not in _OWN_OPTIONS[procedure]]  # fmt: skip
    if stray:
        raise click.UsageError(f"{', '.join(stray)}: not an option of {procedure}")
    for flag, text in (("--technician", options["technician"]),
                       ("--reference-id", options["reference_id"])):  # fmt: skip
        if text is not None and not 0 < len(text) <= 64:
            raise click.UsageError(f"{flag}: 1 to 64 characters (it goes into the record)")
    job = _JOBS[procedure](config, device_id, reference_url, options)
    what = "calibration" if procedure == "nibp-transducer" else "verification"
    op = ScriptedOperator(echo=console.print) if options["yes"] else TerminalOperator()
    try:
        record = asyncio.run(_run_job(job, op))
    except ProcedureAbortedError as exc:
        console.print(f"[red]{what} aborted:[/red] {exc}")
        sys.exit(1)
    except DriverError as exc:
        console.print(f"[red]{what} aborted, device or reference failed:[/red] {exc}")
        sys.exit(1)
    path = _book(config).add(record)
    stored = _book(config).get(record.id)
    png = report.render(stored, path.with_suffix(".png"))
    summary(stored)
    console.print(f"record {path}\nreport {png}")
    sys.exit(0 if stored.result == "pass" else 1)


async def _run_job(job: Job, op: Operator) -> CalibrationRecord:
    return await job(op)


def _get(config: EdgeConfig, record_id: str) -> CalibrationRecord:
    try:
        return _book(config).get(record_id)
    except CalibrationError as exc:
        console.print(f"[red]{exc}[/red]")
        sys.exit(1)


@calibrate.command("show")
@click.argument("record_id")
@common_options
@json_option
def show(record_id: str, config_path: Path, overrides: tuple[str, ...], as_json: bool) -> None:
    """Show a stored record (--json: its certificate JSON)."""
    record = _get(load_or_exit(config_path, overrides), record_id)
    if as_json:
        click.echo(report.certificate_json(record))
    else:
        summary(record)


@calibrate.command("verify")
@click.argument("record_id")
@common_options
def verify(record_id: str, config_path: Path, overrides: tuple[str, ...]) -> None:
    """Check a record: intact (sha256), consistent (its model gives its points), valid today."""
    config = load_or_exit(config_path, overrides)
    record = _get(config, record_id)  # loading checks the sha256
    problems = consistency(record)
    day = today(config)
    if record.result != "pass":
        problems.append(f"the calibration failed ({record.performed_at.date()})")
    if day > record.valid_until:
        problems.append(f"expired on {record.valid_until}")
    if record.valid_from is not None and day < record.valid_from:
        problems.append(f"not valid before {record.valid_from}")
    if problems:
        for p in problems:
            console.print(f"[red]{record.id}: {p}[/red]")
        sys.exit(1)
    console.print(f"[green]{record.id}: intact, consistent, valid until {record.valid_until}"
                  f" ({days_left(record, day)} days left)[/green]")  # fmt: skip


@calibrate.command("report")
@click.argument("record_id")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder for the PNG and the JSON certificate"
    " (default: <state_dir>/calibration-reports/<serial>).",
)
@common_options
def report_cmd(
    record_id: str, out: Path | None, config_path: Path, overrides: tuple[str, ...]
) -> None:
    """Render a record's PNG report and write its JSON certificate."""
    config = load_or_exit(config_path, overrides)
    record = _get(config, record_id)
    # not the records' own folder: every *.json there must be a record (the history)
    folder = out or config.gateway.state_dir / "calibration-reports" / record.device_serial
    folder.mkdir(parents=True, exist_ok=True)
    png = report.render(record, folder / f"{record.id}.png")
    cert = folder / f"{record.id}.certificate.json"
    cert.write_text(report.certificate_json(record))
    console.print(f"report {png}\ncertificate {cert}")

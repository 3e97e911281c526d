"""``santebus calibrate``: technicians calibrate and verify devices, the daemon enforces it.

``list`` shows each device's current calibration and the days it has left; ``run PROCEDURE
--device ID --reference URL`` runs a bench procedure (prompts and progress bars for a person,
``--yes`` for a script), stores the record (append-only, sealed with its sha256) and renders
its report; ``show`` / ``verify`` / ``report`` work on a stored record. Exit status: 0 pass or
valid, 1 fail or invalid, 2 usage, 78 config error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from calibration import report
from calibration.procedures.base import ProcedureAbortedError, ScriptedOperator
from calibration.records import CalibrationBook, CalibrationError, CalibrationRecord, days_left
from drivers.errors import DriverError
from edge.calibrate_check import consistency
from edge.calibrate_runs import PROCEDURES, RunOptions, run_nibp, today
from edge.cli_outbox import common_options, json_option, load_or_exit
from edge.config import EdgeConfig
from edge.config_modbus import ModbusDevice

console = Console()


class TerminalOperator:
    """The technician at a terminal: prompts and progress bars."""

    def say(self, text: str) -> None:
        console.print(text)

    def confirm(self, text: str) -> bool:
        return click.confirm(text, default=True)

    @contextlib.contextmanager
    def progress(self, label: str, total: float) -> Iterator[Callable[[float], None]]:
        columns = (TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(label, total=total)
            yield lambda value: bar.update(task, completed=value)


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
        if isinstance(device, ModbusDevice):
            continue  # no serial number on record: Modbus units are checked, not certified
        try:
            status = book.status(device.serial_number, day)
        except CalibrationError as exc:
            rows.append({"device": device_id, "serial": device.serial_number,
                         "validity": "unreadable", "error": str(exc)})  # fmt: skip
            continue
        r = status.record
        rows.append({
            "device": device_id, "kind": device.kind, "serial": device.serial_number,
            "record": r.id if r else None, "result": r.result if r else None,
            "valid_until": r.valid_until.isoformat() if r else None,
            "days_left": days_left(r, day) if r else None, "validity": status.validity,
            "required": device.calibration_required,
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


@calibrate.command("run")
@click.argument("procedure", type=click.Choice(sorted(PROCEDURES)))
@click.option("--device", "device_id", required=True, help="Device id in the config.")
@click.option("--reference", "reference_url", required=True,
              help="The reference instrument's transport, e.g. serial:///dev/ttyUSB1.")  # fmt: skip
@click.option("--technician", default="technician", show_default=True)
@click.option("--yes", is_flag=True, help="No prompts (scripted bench, CI).")
@click.option("--leak-seconds", type=click.FloatRange(min=1), default=60.0, show_default=True)
@click.option("--sample-seconds", type=click.FloatRange(min=0.5), default=2.0, show_default=True,
              help="Averaging window at each static point.")  # fmt: skip
@click.option("--valid-days", type=click.IntRange(1, 3660), default=365, show_default=True)
@common_options
def run(procedure: str, device_id: str, reference_url: str, technician: str, yes: bool,
        leak_seconds: float, sample_seconds: float, valid_days: int, config_path: Path,
        overrides: tuple[str, ...]) -> None:  # fmt: skip
    """Run PROCEDURE on a device, store its record, render its report."""
    config = load_or_exit(config_path, overrides)
    if device_id not in config.devices:
        raise click.UsageError(f"no device {device_id!r} in the config")
    kind = PROCEDURES[procedure][0]
    if config.devices[device_id].kind != kind:
        raise click.UsageError(f"{procedure} applies to {kind} devices; {device_id} is not one")
    from dataclasses import replace

    from calibration.procedures.nibp import NibpPlan

    plan = replace(NibpPlan(), leak_s=leak_seconds, sample_s=sample_seconds)
    options = RunOptions(technician, reference_url, valid_days, plan)
    op = ScriptedOperator(echo=console.print) if yes else TerminalOperator()
    try:
        record = asyncio.run(run_nibp(config, device_id, options, op))
    except ProcedureAbortedError as exc:
        console.print(f"[red]calibration aborted:[/red] {exc}")
        sys.exit(1)
    except DriverError as exc:
        console.print(f"[red]calibration aborted, device or reference failed:[/red] {exc}")
        sys.exit(1)
    path = _book(config).add(record)
    stored = _book(config).get(record.id)
    png = report.render(stored, path.with_suffix(".png"))
    _summary(stored)
    console.print(f"record {path}\nreport {png}")
    sys.exit(0 if stored.result == "pass" else 1)


def _summary(r: CalibrationRecord) -> None:
    colour = "green" if r.result == "pass" else "red"
    console.print(f"[bold {colour}]{r.result.upper()}[/bold {colour}] {r.id}: {r.device_model}"
                  f" serial {r.device_serial}, {r.procedure or r.kind}")  # fmt: skip
    if r.points:
        table = Table("reference", "raw", "as found", "as left", "error", "tolerance")
        for p in r.points:
            bad = r.tolerance is not None and abs(p.error) > r.tolerance
            table.add_row(f"{p.reference:.2f}", f"{p.raw:.1f}",
                          "-" if p.as_found is None else f"{p.as_found:.2f}",
                          "-" if p.as_left is None else f"{p.as_left:.2f}",
                          f"[red]{p.error:+.2f}[/red]" if bad else f"{p.error:+.2f}",
                          f"±{r.tolerance:g}" if r.tolerance is not None else "-")  # fmt: skip
        console.print(table)
    for c in r.checks:
        mark = "[green]ok[/green]" if c.passed else "[red]FAILED[/red]"
        console.print(
            f"check {c.name}: {c.value:g} {c.unit} (limit {c.limit:g}) {mark}: {c.detail}"
        )
    if r.uncertainty_k2 is not None:
        console.print(f"expanded uncertainty U = {r.uncertainty_k2:g} {r.unit} (k = 2)")
    console.print(f"valid {r.valid_from} .. {r.valid_until}; reference {r.reference_id}"
                  f" (certificate due {r.reference_due})")  # fmt: skip


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
        _summary(record)


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
    help="Folder for the PNG and the JSON certificate (default: the record's).",
)
@common_options
def report_cmd(
    record_id: str, out: Path | None, config_path: Path, overrides: tuple[str, ...]
) -> None:
    """Render a record's PNG report and write its JSON certificate."""
    config = load_or_exit(config_path, overrides)
    record = _get(config, record_id)
    folder = out or config.calibration_dir / record.device_serial
    folder.mkdir(parents=True, exist_ok=True)
    png = report.render(record, folder / f"{record.id}.png")
    cert = folder / f"{record.id}.certificate.json"
    cert.write_text(report.certificate_json(record))
    console.print(f"report {png}\ncertificate {cert}")

"""What ``santebus calibrate`` shows a technician: prompts and progress bars, a record's summary."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from calibration.records import CalibrationRecord

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


def summary(r: CalibrationRecord) -> None:
    colour = "green" if r.result == "pass" else "red"
    console.print(f"[bold {colour}]{r.result.upper()}[/bold {colour}] {r.id}: {r.device_model}"
                  f" serial {r.device_serial}, {r.procedure or r.kind}")  # fmt: skip
    if r.points:
        table = Table("reference", "raw", "as found", "as left", "error", "tolerance")
        for p in r.points:
            bad = r.tolerance is not None and abs(p.error) > r.tolerance
            raw = f"{p.raw:.1f}" if r.model is not None else f"{p.raw:.2f}"  # a reading
            table.add_row(f"{p.reference:.2f}", raw,
                          "-" if p.as_found is None else f"{p.as_found:.2f}",
                          "-" if p.as_left is None else f"{p.as_left:.2f}",
                          f"[red]{p.error:+.2f}[/red]" if bad else f"{p.error:+.2f}",
                          f"±{r.tolerance:g}" if r.tolerance is not None else "-")  # fmt: skip
        console.print(table)
        beyond = [p for p in r.points if r.tolerance is not None and abs(p.error) > r.tolerance]
        if beyond:
            unit = r.unit or ""
            where = ", ".join(f"{p.reference:g} {unit} ({p.error:+.2f})" for p in beyond)
            console.print(f"[red]beyond ±{r.tolerance:g} {unit} at[/red] {where}")
        found = [abs(p.as_found - p.reference) for p in r.points if p.as_found is not None]
        if found and r.tolerance is not None:
            # an as-found error beyond the tolerance means the readings taken since the previous
            # calibration were that far off: the technician reports it (an impact review)
            worst = max(found)
            if worst > r.tolerance:
                console.print(
                    f"[yellow]as found: worst error {worst:.2f} {r.unit or ''}, beyond"
                    f" ±{r.tolerance:g}: readings since the previous calibration need a"
                    " review[/yellow]"
                )
            else:
                console.print(f"as found: worst error {worst:.2f} {r.unit or ''}, within"
                              f" ±{r.tolerance:g}")  # fmt: skip
    for c in r.checks:
        mark = "[green]ok[/green]" if c.passed else "[red]FAILED[/red]"
        console.print(
            f"check {c.name}: {c.value:g} {c.unit} (limit {c.limit:g}) {mark}: {c.detail}"
        )
    if r.uncertainty_k2 is not None:
        console.print(f"expanded uncertainty U = {r.uncertainty_k2:g} {r.unit} (k = 2)")
    due = f"certificate due {r.reference_due}" if r.reference_due else "due date not recorded"
    console.print(f"valid {r.valid_from} .. {r.valid_until}; reference {r.reference_id} ({due})")

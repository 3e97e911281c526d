"""``santebus analyze bp|iop FILE``: run the gateway's signal core on a recorded CSV.

For technicians and for checking a device against a reference: the same analysis as in the
daemon (:mod:`edge.signal`), on a record saved as CSV, printing one JSON object on stdout.

- ``bp``: columns ``t,p`` (seconds, cuff mmHg), or one column ``p`` (header optional) with
  ``--fs``; prints ``systolic_mmHg``, ``diastolic_mmHg``, ``map_mmHg``, ``pulse_rate_bpm``,
  ``quality``, ``flags``.
- ``iop``: columns ``t,pressure,light`` (seconds, calibrated plenum mmHg, photodetector counts),
  or ``pressure,light`` with ``--fs``; prints ``iopg_mmHg``, ``iopcc_mmHg``, ``ch_mmHg``,
  ``p1_mmHg``, ``p2_mmHg``, ``quality``, ``flags``.

A headerless file is read by position (``p``; ``t,p``; ``pressure,light``;
``t,pressure,light``). Blank lines and lines starting with ``#`` are skipped. The sampling rate
comes from the time column (its mean interval; each interval must be within 5 % of the median
one, and the times must increase); a time column need not start at zero. ``--fs`` given with a
time column must agree with it within 1 %.

Exit status: 0 with the estimate; 65 (EX_DATAERR, sysexits.h) when the analysis refuses the
record (``{"error": code, "reason": sentence}`` on stdout) or the file is malformed (a message
naming the line and column on stderr); 2 for usage errors (click's: a missing file, a single
column without ``--fs``, ``--fs`` contradicting the time column). ``--plot OUT.png`` draws what
the analysis saw (:mod:`edge.plots`), refused records included.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import numpy as np

from edge.signal.filters import FloatArray
from edge.signal.results import BpEstimate, IopEstimate, Refusal

EX_DATAERR = 65

_R = TypeVar("_R")

#: each sampling interval must lie within this fraction of the record's mean interval
INTERVAL_TOLERANCE = 0.05
#: ``--fs`` and the time column must agree within this fraction
FS_TOLERANCE = 0.01


class DataError(ValueError):
    """The file cannot be read as the record the command needs (exit 65)."""


@dataclass(frozen=True, slots=True)
class Record:
    """A CSV record: named value columns, sampled at ``fs`` Hz."""

    columns: dict[str, FloatArray]
    fs: float


def _parse(
    text: str, names: tuple[str, ...]
) -> tuple[tuple[str, ...], list[list[float]], list[int]]:
    """Header (given or positional), rows of floats and their file line numbers."""
    reader = csv.reader(io.StringIO(text))
    header: tuple[str, ...] | None = None
    rows: list[list[float]] = []
    lines: list[int] = []
    for fields in reader:
        line = reader.line_num
        cells = [f.strip() for f in fields]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if header is None and not rows and not _numeric(cells[0]):
            header = _check_header(cells, names, line)
            continue
        width = len(header) if header is not None else len(rows[0]) if rows else len(cells)
        if len(cells) != width:
            raise DataError(f"line {line}: {len(cells)} fields, expected {width}")
        rows.append([_number(c, line, j, header) for j, c in enumerate(cells)])
        lines.append(line)
    if header is None:
        header = _positional(len(rows[0]), names) if rows else names
    return header, rows, lines


def _numeric(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _number(cell: str, line: int, index: int, header: tuple[str, ...] | None) -> float:
    name = f" ({header[index]})" if header is not None else ""
    try:
        value = float(cell)
    except ValueError:
        raise DataError(
            f"line {line}, column {index + 1}{name}: {cell!r} is not a number"
        ) from None
    if not math.isfinite(value):
        raise DataError(f"line {line}, column {index + 1}{name}: {cell!r} is not a finite number")
    return value


def _expected(names: tuple[str, ...]) -> str:
    return f"'t,{','.join(names)}' or '{','.join(names)}'"


def _check_header(cells: list[str], names: tuple[str, ...], line: int) -> tuple[str, ...]:
    header = tuple(c.lower() for c in cells)
    if sorted(header) not in (sorted(names), sorted(("t", *names))):
        raise DataError(f"line {line}: header {','.join(cells)!r}, expected {_expected(names)}")
    return header


def _positional(width: int, names: tuple[str, ...]) -> tuple[str, ...]:
    if width == len(names):
        return names
    if width == len(names) + 1:
        return ("t", *names)
    raise DataError(f"{width} columns without a header, expected {_expected(names)}")


def _sampling_rate(t: FloatArray, lines: list[int]) -> float:
    steps = np.diff(t)
    backwards = np.flatnonzero(steps <= 0.0)
    if backwards.size:
        i = int(backwards[0]) + 1
        raise DataError(f"line {lines[i]}: time {t[i]:g} s does not increase after {t[i - 1]:g} s")
    # the median interval is the reference (one gap must not make every interval look off);
    # the rate itself comes from the whole span, which rounded times affect least
    typical = float(np.median(steps))
    off = np.flatnonzero(np.abs(steps - typical) > INTERVAL_TOLERANCE * typical)
    if off.size:
        i = int(off[0]) + 1
        raise DataError(
            f"line {lines[i]}: irregular sampling: interval {steps[i - 1] * 1000:.4g} ms, the "
            f"record's median is {typical * 1000:.4g} ms (tolerance {INTERVAL_TOLERANCE:.0%}); "
            "write times with enough decimals"
        )
    return float((t.size - 1) / (t[-1] - t[0]))


def load_record(path: Path, names: tuple[str, ...], fs: float | None) -> Record:
    """The columns ``names`` of the CSV at ``path`` and their sampling rate.

    Raises :class:`DataError` (exit 65) for a malformed file, :class:`click.UsageError`
    (exit 2) when ``--fs`` is missing for a file without times or contradicts the times.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file (byte {exc.start})") from None
    except OSError as exc:
        raise DataError(f"{path}: {exc.strerror}") from None
    header, rows, lines = _parse(text, names)
    if len(rows) < 2:
        raise DataError(f"{path}: {len(rows)} samples, at least 2 needed")
    table = np.asarray(rows, dtype=np.float64)
    columns = {name: np.ascontiguousarray(table[:, j]) for j, name in enumerate(header)}
    if "t" in columns:
        measured = _sampling_rate(columns.pop("t"), lines)
        if fs is not None and abs(fs - measured) > FS_TOLERANCE * measured:
            raise click.UsageError(
                f"--fs {fs:g} Hz contradicts the time column of {path} ({measured:.6g} Hz)"
            )
        fs = measured
    elif fs is None:
        raise click.UsageError(f"{path} has no time column: give the sampling rate with --fs")
    return Record(columns, fs)


def _emit(payload: dict[str, Any]) -> None:
    click.echo(json.dumps(payload))


def _refused(refusal: Refusal) -> NoReturn:
    _emit({"error": refusal.code, "reason": refusal.reason})
    click.echo(f"refused ({refusal.code}): {refusal.reason}", err=True)
    raise SystemExit(EX_DATAERR)


def _load_or_exit(path: Path, names: tuple[str, ...], fs: float | None) -> Record:
    try:
        return load_record(path, names, fs)
    except DataError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EX_DATAERR) from None


def _guarded(analysis: Callable[[], _R]) -> _R:
    """Run the analysis; a ValueError it raises (input it cannot take) is bad data, exit 65."""
    try:
        return analysis()
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EX_DATAERR) from None


def _mmhg(x: float) -> float:
    return round(x, 1)


_file_argument = click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
_fs_option = click.option(
    "--fs",
    type=click.FloatRange(min=0.0, min_open=True),
    default=None,
    metavar="HZ",
    help="Sampling rate, for a file without a time column.",
)
_plot_option = click.option(
    "--plot",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    metavar="OUT.png",
    help="Also draw what the analysis saw into this PNG.",
)


@click.group("analyze")
def analyze() -> None:
    """Analyse a recorded raw signal as the gateway does (JSON on stdout)."""


@analyze.command("bp")
@_file_argument
@_fs_option
@_plot_option
def analyze_bp_command(file: Path, fs: float | None, plot: Path | None) -> None:
    """Oscillometric blood pressure from a cuff-pressure record (CSV t,p or p)."""
    record = _load_or_exit(file, ("p",), fs)
    from edge.signal.oscillometry import analyze_bp

    pressure = record.columns["p"]
    result = _guarded(lambda: analyze_bp(pressure, record.fs))
    if plot is not None:
        from edge.plots import bp_figure

        bp_figure(pressure, record.fs, result, plot)
    if isinstance(result, Refusal):
        _refused(result)
    _emit(_bp_json(result))


def _bp_json(bp: BpEstimate) -> dict[str, Any]:
    return {
        "systolic_mmHg": _mmhg(bp.systolic),
        "diastolic_mmHg": _mmhg(bp.diastolic),
        "map_mmHg": _mmhg(bp.mean),
        "pulse_rate_bpm": round(bp.pulse_rate, 1),
        "quality": round(bp.quality, 2),
        "flags": list(bp.flags),
    }


@analyze.command("iop")
@_file_argument
@_fs_option
@_plot_option
def analyze_iop_command(file: Path, fs: float | None, plot: Path | None) -> None:
    """Air-puff tonometry from one puff record (CSV t,pressure,light; pressure in mmHg)."""
    record = _load_or_exit(file, ("pressure", "light"), fs)
    from edge.signal.tonometry import analyze_iop

    pressure, light = record.columns["pressure"], record.columns["light"]
    result = _guarded(lambda: analyze_iop(pressure, light, record.fs))
    if plot is not None:
        from edge.plots import iop_figure

        iop_figure(pressure, light, record.fs, result, plot)
    if isinstance(result, Refusal):
        _refused(result)
    _emit(_iop_json(result))


def _iop_json(iop: IopEstimate) -> dict[str, Any]:
    return {
        "iopg_mmHg": _mmhg(iop.iopg),
        "iopcc_mmHg": _mmhg(iop.iopcc),
        "ch_mmHg": _mmhg(iop.ch),
        "p1_mmHg": _mmhg(iop.p1),
        "p2_mmHg": _mmhg(iop.p2),
        "quality": round(iop.quality, 2),
        "flags": list(iop.flags),
    }

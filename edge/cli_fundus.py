"""``santebus fundus last --station S``: the last fundus photograph's verdict at a station.

Read from the running daemon's status socket (edge/health/status.py), as ``santebus status``
does (same socket location and exit codes: 0 answered, 3 not running, 4 unknown), so the nurse
sees within seconds whether to retake the photograph. Exit 1 when the station has no verdict
yet. Nothing identifies the patient: the verdict names the device, the eye, the reasons and
the measures (docs/imaging.md), never the visit.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from edge.cli_status import read_status_or_exit, status_socket_options

#: what each reason code asks of the nurse (edge/imaging/gradability.py REASONS)
ADVICE = {
    "no-field": "no retina in the picture: check the patient's position",
    "off-centre": "the macula or the disc is off the field: re-centre on the fixation target",
    "no-optic-disc": "the optic disc is not visible: re-centre",
    "blurred": "out of focus: refocus",
    "too-dark": "too dark: small pupil or flash too weak; wait for the pupil, raise the flash",
    "too-bright": "too bright: lower the flash",
    "low-contrast": "low contrast: media opacity or haze; clean the lens, retake",
    "occluded": "the eyelid or lashes hide the field: ask the patient to open wide",
    "grading-timeout": "not graded in time: look at the photograph on the camera",
}


@click.group("fundus")
def fundus() -> None:
    """Retinal photographs (issue #10): what the gateway made of them."""


@fundus.command("last")
@click.option("--station", required=True, help="The station, as in the config's [stations].")
@click.option("--json", "as_json", is_flag=True, help="The verdict as JSON.")
@status_socket_options
def last(
    station: str,
    as_json: bool,
    socket_path: Path | None,
    config_path: Path | None,
    overrides: tuple[str, ...],
) -> None:
    """The last photograph's verdict at STATION: gradable, or retake and why.

    Exit 0 with a verdict, 1 when none yet, 3 when the daemon is not running, 4 when its status
    cannot be read.
    """
    data = read_status_or_exit(socket_path, config_path, overrides)
    verdict = data.get("fundus", {}).get(station)
    if verdict is None:
        click.echo(f"no fundus photograph graded at station {station} since the daemon started",
                   err=True)  # fmt: skip
        sys.exit(1)
    if as_json:
        click.echo(json.dumps({"station": station, **verdict}, sort_keys=True))
        return
    click.echo(render(station, verdict, data.get("at", time.time())))


def render(station: str, v: dict[str, Any], now: float) -> str:
    """The nurse's view of one verdict."""
    age = max(0, int(now - float(v.get("at", now))))
    head = f"station {station}, {v['eye']} eye ({v['device']}), {age} s ago: "
    if v.get("gradable"):
        head += "GRADABLE"
    else:
        head += "RETAKE"
    lines = [head]
    reasons = [r for r in str(v.get("reasons", "")).split(",") if r]
    lines += [f"  - {r}: {ADVICE.get(r, r)}" for r in reasons]
    shown = ("focus", "luma", "clipped", "occluded", "disc_contrast", "contrast")
    measures = ", ".join(f"{k} {v[k]}" for k in shown if k in v)
    if measures:
        lines.append(
            f"  measures: {measures}; verdict {v.get('latency_ms', '-')} ms after reception"
        )
    lines.append(f"  object {v['object_id']}")
    return "\n".join(lines)

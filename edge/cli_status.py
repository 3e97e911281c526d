"""``santebus status``: what the running daemon says about itself, read over its status socket.

The socket is ``--socket``, else the one ``--config`` implies (edge/health/status.py), else
``/run/santebus/status.sock``. Exit codes follow the ``status`` action of an init script (LSB
Core specification, "Init Script Actions"): 0 running, 3 not running (no socket, or nothing
accepts on it), 4 status unknown (permission denied, a garbled or late answer).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from edge.cli_outbox import load_or_exit
from edge.health.status import (
    DaemonNotRunningError,
    StatusUnreadableError,
    client_sockets,
    read_status,
)

EXIT_NOT_RUNNING = 3
EXIT_UNKNOWN = 4

F = TypeVar("F", bound=Callable[..., Any])


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s >= 86400:
        return f"{s // 86400}d{s % 86400 // 3600:02d}h"
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _present(path: Path) -> bool:
    """True if the socket exists, or if its directory may not be searched (asking will say)."""
    try:
        return path.exists()
    except PermissionError:  # /run/santebus is 0750: not root, not in group santebus
        return True


def _locate(socket_path: Path | None, config_path: Path | None, overrides: tuple[str, ...]) -> Path:
    """The socket to read: the first candidate that exists, else the first (for the message)."""
    if socket_path is not None:
        return socket_path
    if config_path is None:
        candidates = client_sockets(None, None)
    else:
        config = load_or_exit(config_path, overrides)
        candidates = client_sockets(config.health.status_socket, config.gateway.state_dir)
    found = [p for p in candidates if _present(p)]
    if found:
        return found[0]
    if len(candidates) > 1:
        tried = " or ".join(str(p) for p in candidates)
        click.echo(f"santebus daemon not running: no status socket at {tried}", err=True)
        sys.exit(EXIT_NOT_RUNNING)
    return candidates[0]


def status_socket_options(f: F) -> F:
    """Add ``--socket``, ``--config`` and ``--set``: where to find the daemon's status socket."""
    f = click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE")(f)
    f = click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Gateway TOML config: its [health] status_socket, or the default it implies.",
    )(f)
    return click.option(
        "--socket",
        "socket_path",
        type=click.Path(path_type=Path, dir_okay=False),
        help="The daemon's status socket (default: from --config, else /run/santebus/status.sock).",
    )(f)


def read_status_or_exit(
    socket_path: Path | None, config_path: Path | None, overrides: tuple[str, ...]
) -> dict[str, Any]:
    """The daemon's snapshot, read over the socket the options name; else exit 3 or 4."""
    path = _locate(socket_path, config_path, overrides)
    try:
        data = read_status(path)
    except DaemonNotRunningError as exc:
        click.echo(f"santebus daemon not running: {exc}", err=True)
        sys.exit(EXIT_NOT_RUNNING)
    except StatusUnreadableError as exc:
        click.echo(f"santebus status unknown: {exc}", err=True)
        sys.exit(EXIT_UNKNOWN)
    return data


def render(data: dict[str, Any], console: Console) -> None:
    """The human view of a snapshot (``santebus status`` without ``--json``)."""
    mqtt, box = data["mqtt"], data["outbox"]
    link = "[green]connected[/green]" if mqtt["connected"] else "[red]offline[/red]"
    last = mqtt.get("last_connect")
    since = f" (last connect {_age(data['at'] - last)} ago)" if last else " (never connected)"
    console.print(
        f"[bold]bus {data['bus']}[/bold]  santebus-edge {data['version']}  pid {data['pid']}"
        f"  up {_age(data['uptime_s'])}"
    )
    console.print(
        f"mqtt {link}{since}; {mqtt['published']} published, {mqtt['confirmed']} confirmed"
        f" by the backend, {mqtt['rejected']} rejected"
    )
    if box.get("error"):
        console.print(f"outbox [red]unreadable[/red]: {box['error']}")
    else:
        console.print(
            f"outbox {box['pending']} pending, {box['in_flight']} in flight,"
            f" {box['rejected']} rejected; oldest waiting {_age(box['oldest_age_s'])}"
        )
    table = Table("device", "kind", "state", "records", "failures", "frame err", "last rec",
                  "calibration")  # fmt: skip
    for device, d in sorted(data["devices"].items()):
        style = {"connected": "green", "starting": "yellow"}.get(d["state"], "red")
        table.add_row(
            device, d["kind"], f"[{style}]{d['state']}[/{style}]", str(d["records"]),
            str(d["failures"]), "-" if d["frame_errors"] is None else str(d["frame_errors"]),
            _age(d["last_record_age_s"]), _calibration(d.get("calibration")),
        )  # fmt: skip
    console.print(table)


def _calibration(cal: dict[str, Any] | None) -> str:
    if cal is None:
        return "-"
    validity, left = str(cal["validity"]), cal["days_left"]
    if left is None:
        return validity
    return f"{validity}, {left} d left" if left >= 0 else f"{validity}, lapsed {-left} d ago"


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="The daemon's snapshot as JSON.")
@status_socket_options
def status(
    as_json: bool, socket_path: Path | None, config_path: Path | None, overrides: tuple[str, ...]
) -> None:
    """What the running daemon reports: broker link, outbox, devices, calibrations.

    Exit 0 when it answers, 3 when it is not running, 4 when its status cannot be read.
    """
    data = read_status_or_exit(socket_path, config_path, overrides)
    if as_json:
        click.echo(json.dumps(data, sort_keys=True))
        return
    data.setdefault("at", time.time())
    console = Console()
    render(data, console if console.is_terminal else Console(width=120))

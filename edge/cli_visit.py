"""``santebus visit start | stop | list``: open and close visits at a station by hand.

The reception tablet normally does this over MQTT; these commands are the operator's fallback
and the technician's test tool. They write the same SQLite visit book as the daemon (safe while
it runs: SQLite serialises writers, busy timeout 5 s).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from edge.cli_outbox import common_options, json_option, load_or_exit
from edge.visits import Visit, VisitBook, VisitError


@contextlib.contextmanager
def _book(config_path: Path, overrides: tuple[str, ...]) -> Iterator[VisitBook]:
    config = load_or_exit(config_path, overrides)
    book = VisitBook(config.visits_path, set(config.stations))
    try:
        yield book
    except VisitError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        book.close()


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts).astimezone().isoformat("T", "seconds")


@click.group("visit")
def visit() -> None:
    """Open, close and list patient visits at stations (pseudonymous ids only)."""


@visit.command("start")
@common_options
@click.option("--station", required=True)
@click.option("--visit", "visit_id", required=True, help="Pseudonymous visit id from reception.")
def start(config_path: Path, overrides: tuple[str, ...], station: str, visit_id: str) -> None:
    """Open VISIT at STATION (a visit still open there is closed first)."""
    with _book(config_path, overrides) as book:
        for old in book.start(station, visit_id):
            click.echo(f"closed {old.visit_id} at {station} (superseded)")
        click.echo(f"opened {visit_id} at {station}")


@visit.command("stop")
@common_options
@click.option("--station", required=True)
def stop(config_path: Path, overrides: tuple[str, ...], station: str) -> None:
    """Close the visit open at STATION."""
    with _book(config_path, overrides) as book:
        closed = book.stop(station)
        click.echo(f"closed {closed.visit_id} at {station}")


@visit.command("list")
@common_options
@json_option
@click.option("--all", "show_all", is_flag=True, help="Recent closed visits too.")
def list_visits(
    config_path: Path, overrides: tuple[str, ...], as_json: bool, show_all: bool
) -> None:
    """The visits open now (with --all, the 50 most recent)."""
    with _book(config_path, overrides) as book:
        visits: list[Visit] = book.history() if show_all else book.open_visits()
    if as_json:
        click.echo(json.dumps([asdict(v) for v in visits], sort_keys=True))
        return
    table = Table(title="visits" if show_all else "open visits")
    for column in ("station", "visit", "opened", "closed", "closed by"):
        table.add_column(column)
    for v in visits:
        table.add_row(
            v.station, v.visit_id, _when(v.opened_at), _when(v.closed_at), v.closed_by or ""
        )
    Console().print(table)

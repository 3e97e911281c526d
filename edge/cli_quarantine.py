"""``santebus quarantine list | show ID``: readings clinical validation held back.

A quarantined reading was never published: it is impossible (outside its plausibility range) or
inconsistent with its record (e.g. systolic not above diastolic). The operator sees why here
and takes it up with the technician (a sensor fault) - nothing is silently dropped.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from edge.cli_outbox import common_options, json_option, open_outbox


@click.group("quarantine")
def quarantine() -> None:
    """Readings held back by clinical validation (never published)."""


@quarantine.command("list")
@common_options
@json_option
@click.option("--limit", type=int, default=100, show_default=True)
def list_held(config_path: Path, overrides: tuple[str, ...], as_json: bool, limit: int) -> None:
    """The most recent quarantined readings, newest first."""
    with open_outbox(config_path, overrides) as box:
        held = box.quarantined(limit=limit)
    if as_json:
        click.echo(json.dumps([asdict(q) for q in held], sort_keys=True))
        return
    table = Table(title=f"quarantine ({len(held)} shown)")
    for column in ("seq", "when", "device", "quantity", "reason"):
        table.add_column(column)
    for q in held:
        when = datetime.fromtimestamp(q.created_at).astimezone().isoformat("T", "seconds")
        table.add_row(str(q.seq), when, q.device, q.quantity, q.reason)
    Console().print(table)


@quarantine.command("show")
@common_options
@click.argument("key")
def show(config_path: Path, overrides: tuple[str, ...], key: str) -> None:
    """One quarantined reading (KEY: its seq or message id), with its full detail."""
    with open_outbox(config_path, overrides) as box:
        found = box.quarantined(key=key, limit=1)
    if not found:
        click.echo(f"no quarantined reading {key!r}", err=True)
        raise SystemExit(1)
    item = asdict(found[0])
    item["detail"] = json.loads(item["detail"])
    click.echo(json.dumps(item, indent=2, sort_keys=True))

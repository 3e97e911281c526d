"""The ``santebus`` command line.

Every command that takes ``--config`` also takes repeated ``--set key.path=value`` overrides.
Config faults exit 78 (EX_CONFIG, sysexits.h) with file, key path and line. The simulator and
reference-backend commands load :mod:`simulators` lazily: production code never imports it.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path
from typing import Any

import click

from edge import logs
from edge.config import EdgeConfig
from edge.config_loader import EX_CONFIG, ConfigError, load_config, read_toml, validate

_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Gateway TOML config.",
)
_set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY.PATH=VALUE",
    help="Override a config value (repeatable), e.g. --set mqtt.port=18830.",
)


def _simulation_check(
    data: dict[str, Any], file: str, text: str, touched: set[tuple[str, ...]]
) -> None:
    """Validate the ``[simulation]`` table with the simulators' own schema, when present."""
    if "simulation" not in data:
        return
    scenario = importlib.import_module("simulators.scenario")
    validate(scenario.SimulationConfig, data["simulation"], file, text, touched, ("simulation",))


def _load(path: Path, overrides: tuple[str, ...], *, simulation: bool = True) -> EdgeConfig:
    checks = [_simulation_check] if simulation else []
    try:
        return load_config(path, overrides, checks)
    except ConfigError as exc:
        for issue in exc.issues:
            click.echo(f"config error: {issue}", err=True)
        sys.exit(EX_CONFIG)


#: the operators' commands, imported only when invoked: `santebus run` must not carry
#: matplotlib, rich and the analyses (measured: 113 MB RSS with them, 77 MB without)
_LAZY = {
    "analyze": "edge.cli_analyze:analyze",
    "calibrate": "edge.cli_calibrate:calibrate",
    "decode": "edge.cli_decode:decode_group",
    "fundus": "edge.cli_fundus:fundus",
    "outbox": "edge.cli_outbox:outbox",
    "quarantine": "edge.cli_quarantine:quarantine",
    "status": "edge.cli_status:status",
    "visit": "edge.cli_visit:visit",
}


class _LazyGroup(click.Group):
    """A command group whose listed subcommands are imported when first looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _LAZY and cmd_name not in self.commands:
            module, attr = _LAZY[cmd_name].split(":")
            command = getattr(importlib.import_module(module), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{_LAZY[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup)
@click.version_option(package_name="santebus-edge")
def main() -> None:
    """santebus-edge: the onboard gateway of a mobile health bus."""


@main.command("check-config")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@_set_option
def check_config(file: Path, overrides: tuple[str, ...]) -> None:
    """Validate FILE; print OK or every error with file, key path and line (exit 78)."""
    _load(file, overrides)
    click.echo("OK")


@main.command("run")
@_config_option
@_set_option
def run(config_path: Path, overrides: tuple[str, ...]) -> None:
    """Run the gateway daemon until SIGTERM."""
    config = _load(config_path, overrides)
    logs.setup(config.gateway.log_level)
    from edge.app import Daemon

    sys.exit(asyncio.run(Daemon(config).run()))


@main.command("simulate")
@_config_option
@_set_option
@click.option("--ledger", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
def simulate(
    config_path: Path, overrides: tuple[str, ...], ledger: Path, duration: float | None
) -> None:
    """Run the simulated devices the config declares on ptys, writing a ground-truth ledger."""
    config = _load(config_path, overrides)
    logs.setup(config.gateway.log_level)
    data, _, _ = read_toml(config_path, overrides)
    runner = importlib.import_module("simulators.runner")
    sys.exit(runner.main(data, ledger, duration))


@main.group("backend", invoke_without_command=True)
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False))
@_set_option
@click.option("--db", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--share", metavar="GROUP", help="Join shared subscription GROUP (several workers).")
@click.option("--instance", type=int, default=0, help="Worker number, unique within a --share.")
@click.pass_context
def backend(
    ctx: click.Context,
    config_path: Path | None,
    overrides: tuple[str, ...],
    db: Path | None,
    share: str | None,
    instance: int,
) -> None:
    """Run the reference backend: store Observations by message id, then ack them."""
    if ctx.invoked_subcommand is not None:
        return
    if config_path is None or db is None:
        raise click.UsageError("backend needs --config and --db (or a subcommand)")
    config = _load(config_path, overrides)
    logs.setup(config.gateway.log_level)
    service = importlib.import_module("simulators.backend.service")
    sys.exit(service.main(config.mqtt.host, config.mqtt.port, db, share, instance))


@backend.command("export")
@click.option("--db", type=click.Path(path_type=Path, dir_okay=False, exists=True), required=True)
@click.option(
    "--what",
    type=click.Choice(["observations", "telemetry", "events", "objects"]),
    default="observations",
    show_default=True,
)
def backend_export(db: Path, what: str) -> None:
    """Print what the backend stored as JSON lines (Observations, telemetry, events, objects).

    ``objects``: per large object, its id, size, sha256, whether the reassembled object was
    verified, chunks stored and duplicate chunks received.
    """
    store = importlib.import_module("simulators.backend.store")
    if what == "objects":
        lines = importlib.import_module("simulators.backend.objects").export_objects(db)
    elif what == "observations":
        lines = store.export_lines(db)
    else:
        lines = store.export_monitoring(db, "telemetry" if what == "telemetry" else "event")
    for line in lines:
        click.echo(line)

"""``santebus decode gatt UUID HEX``: a captured characteristic value as FHIR Observations.

For technicians debugging with btmon or nRF Connect captures: the value goes through the same
parser, validation and FHIR encoder as in the daemon (no visit binding, no calibration), and
the Observations are printed as JSON, one per line. A malformed value prints the parser's
error (naming the field and byte offset) and exits 65 (EX_DATAERR, sysexits.h).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import click

from drivers.ble.gatt.registry import GattParseError, decode
from drivers.ble.readings import readings
from drivers.readings import Delivery
from edge.pipeline import fhir
from edge.pipeline.ingest import DeviceIdentity, Ingest
from edge.publish.topics import Topics

EX_DATAERR = 65


async def _nothing() -> None:
    return None


@click.group("decode")
def decode_group() -> None:
    """Decode captured device data."""


@decode_group.command("gatt")
@click.argument("uuid")
@click.argument("value")
@click.option("--device", default="ble-device", show_default=True, help="Device id to show.")
@click.option("--serial", default="unknown", show_default=True, help="Device serial number.")
@click.option("--timezone", default="Europe/Paris", show_default=True)
def decode_gatt(uuid: str, value: str, device: str, serial: str, timezone: str) -> None:
    """Print the FHIR Observation(s) of a captured characteristic value.

    UUID as 2A35, 0x2A35 or the 128-bit form; VALUE as hex bytes (spaces and colons allowed).
    """
    try:
        data = bytes.fromhex(value.replace(":", "").replace(" ", ""))
    except ValueError:
        click.echo(f"error: {value!r} is not hexadecimal bytes", err=True)
        raise SystemExit(EX_DATAERR) from None
    try:
        name, parsed = decode(uuid, data)
    except GattParseError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EX_DATAERR) from None
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EX_DATAERR) from None
    click.echo(f"# {name}: {parsed}", err=True)
    received = datetime.now(ZoneInfo(timezone)).replace(microsecond=0, tzinfo=None)
    found = readings(parsed, received)
    if not found:
        click.echo("# no measurement in this characteristic (a feature or control value)", err=True)
        return
    ingest = Ingest(None, Topics("decode"), timezone)
    delivery = Delivery(found, "BLE", _nothing)
    for p in ingest.measurements(DeviceIdentity(device, serial), delivery):
        if p.quarantine is not None:
            click.echo(f"# quarantined (never published): {p.quarantine}", err=True)
            continue
        click.echo(fhir.dumps(fhir.observation(p.measurement)))

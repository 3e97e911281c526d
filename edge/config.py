"""The gateway's one TOML configuration file, validated by pydantic (unknown keys are errors).

Secrets are never inline: TLS keys and passwords are file paths (systemd ``LoadCredential``).
The ``[simulation]`` table belongs to the simulators and is validated by them when selected.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from drivers.ble.adapter import validate_adapter
from drivers.errors import DeviceConfigError
from drivers.modbus.lines import parse_modbus_url
from drivers.modbus.maps import RegisterMap, load_map, parse_points
from drivers.transport import validate_url

_ID = r"^[a-z0-9][a-z0-9_-]{0,47}$"
#: as on a device's label; letters, digits, '.', '_' and '-' (it names a folder on disk)
_ID_SERIAL = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewaySection(_Strict):
    bus_id: Annotated[str, Field(pattern=_ID)]
    state_dir: Path = Path("/var/lib/santebus")
    timezone: str = "Europe/Paris"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class MqttSection(_Strict):
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 8883
    client_id: str | None = None
    keepalive: Annotated[int, Field(ge=5, le=3600)] = 30
    #: MQTT 5 Session Expiry Interval (s) so acks queued while we were offline survive
    session_expiry: Annotated[int, Field(ge=0)] = 7 * 24 * 3600
    tls: bool = True
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    username: str | None = None
    password_file: Path | None = None
    #: seconds without a backend ack after which a published row is sent again
    resend_after: Annotated[float, Field(gt=0)] = 30.0
    #: QoS 1 publishes awaiting their PUBACK at once (the drain benchmark runs with 100)
    max_in_flight: Annotated[int, Field(ge=1, le=1000)] = 100
    connect_timeout: Annotated[float, Field(gt=0)] = 10.0

    @model_validator(mode="after")
    def _fail_closed(self) -> MqttSection:
        # Fail closed: plaintext MQTT only to a broker on this machine (tests, demo).
        if not self.tls and not _is_loopback(self.host):
            raise ValueError(f"tls = false is only allowed for a loopback host, not {self.host!r}")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OutboxSection(_Strict):
    path: Path | None = None
    #: the outbox file never grows past this, nor past the free disk space minus the reserve
    max_bytes: Annotated[int, Field(ge=64 * 1024)] = 1 << 30
    #: disk space kept free for the WAL and checkpoints, so deletes work on a full disk
    reserve_bytes: Annotated[int, Field(ge=0)] = 32 << 20
    #: telemetry and events beyond this are evicted oldest-first (clinical rows never are)
    telemetry_max_bytes: Annotated[int, Field(ge=0)] = 64 << 20
    #: fractions of max_bytes at which an outbox.high_water event is raised
    high_water: tuple[Annotated[float, Field(gt=0, le=1)], ...] = (0.5, 0.8, 0.95)


Span = tuple[float, float]


class OperatingConditions(_Strict):
    """Where a measuring device gives valid readings (its manual's operating conditions).

    A reading taken while the cabin climate (the Modbus devices of role ``climate``) is outside
    them, or unknown, is published preliminary with a note, and an event is raised.
    """

    temperature: Span | None = None  # Cel
    humidity: Span | None = None  # %RH

    @model_validator(mode="after")
    def _ordered(self) -> OperatingConditions:
        for name, span in (("temperature", self.temperature), ("humidity", self.humidity)):
            if span is not None and not span[0] < span[1]:
                raise ValueError(f"{name}: the low bound must be below the high bound, {span}")
        return self


class _SerialDevice(_Strict):
    """A device on a serial line (RS-232 or USB), reconnected with backoff when it vanishes."""

    transport: str
    operating: OperatingConditions | None = None
    #: the device's serial number, as on its label (it names its calibration records folder)
    serial_number: Annotated[str, Field(pattern=_ID_SERIAL)]
    #: a reading with no calibration record on file is published ``preliminary`` with a note;
    #: an expired or failed record always does that, required or not
    calibration_required: bool = False
    #: seconds between reconnect attempts grow from this ...
    reconnect_min: Annotated[float, Field(gt=0)] = 0.5
    #: ... up to this
    reconnect_max: Annotated[float, Field(gt=0)] = 30.0

    @field_validator("transport")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        try:
            validate_url(value)
        except DeviceConfigError as exc:
            raise ValueError(str(exc)) from exc
        return value


class Ct80Device(_SerialDevice):
    """A CT-80 style air-puff tonometer on RS-232."""

    kind: Literal["ct80"]


class _RawSignalDevice(_SerialDevice):
    """A raw-signal front-end: the gateway derives the readings from its samples (edge/signal).

    ``pressure_gain`` and ``pressure_offset`` are the pressure transducer's calibration,
    ``mmHg = gain * counts + offset``, as established against a reference manometer.
    """

    pressure_gain: Annotated[float, Field(gt=0)] = 0.01
    pressure_offset: float = 0.0
    #: keep the raw record of each refused measurement as CSV under
    #: ``<state_dir>/recordings/<device>/`` (readable by ``santebus analyze``), at most this many
    keep_refused: Annotated[int, Field(ge=0, le=10000)] = 200


class NibpDevice(_RawSignalDevice):
    """An OEM NIBP module streaming the cuff pressure of each deflation (drivers/devices/nibp)."""

    kind: Literal["nibp"]


class AirpuffDevice(_RawSignalDevice):
    """An air-puff tonometer front-end streaming each puff's plenum pressure and light."""

    kind: Literal["airpuff"]


BleProfileName = Literal[
    "blood-pressure", "glucose", "thermometer", "weight-scale", "pulse-oximeter"
]


class BleDevice(_Strict):
    """A Bluetooth LE health device speaking one of the SIG health profiles."""

    kind: Literal["ble"]
    profile: BleProfileName
    #: its address as on the device (or as ``bluetoothctl`` shows it); only configured
    #: addresses are ever connected to
    address: Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")]
    #: ``bluez:hci0`` on the bus; ``bumble:<HCI transport>`` for the simulated radio
    adapter: str = "bluez:hci0"
    serial_number: Annotated[str, Field(pattern=_ID_SERIAL)]
    #: pair (Just Works, bonding) before subscribing; a device that asks for it is paired
    #: anyway
    pair: bool = False
    #: write Current Time to a device whose clock is unset or off by more than this (s)
    set_clock: bool = True
    clock_tolerance_s: Annotated[float, Field(ge=0)] = 2.0
    #: glucose: seconds between two requests for new stored records while connected
    racp_poll_s: Annotated[float, Field(gt=0)] = 30.0
    connect_timeout: Annotated[float, Field(gt=0)] = 20.0
    calibration_required: bool = False
    operating: OperatingConditions | None = None
    reconnect_min: Annotated[float, Field(gt=0)] = 0.5
    reconnect_max: Annotated[float, Field(gt=0)] = 10.0

    @field_validator("adapter")
    @classmethod
    def _valid_adapter(cls, value: str) -> str:
        try:
            return validate_adapter(value)
        except DeviceConfigError as exc:
            raise ValueError(str(exc)) from exc


class ColdChainSettings(_Strict):
    """The storage range of a medicine fridge (vaccines and insulin: 2-8 Cel)."""

    low: float = 2.0
    high: float = 8.0
    #: an excursion ends once the temperature is back this far inside the range (no chatter)
    hysteresis: Annotated[float, Field(ge=0)] = 0.3

    @model_validator(mode="after")
    def _ordered(self) -> ColdChainSettings:
        if not self.low + 2 * self.hysteresis < self.high:
            raise ValueError("cold chain: need low + 2 x hysteresis < high")
        return self


class PowerSettings(_Strict):
    """When the bus battery is low enough to warn, and to stop the daemon cleanly."""

    warn_soc: Annotated[float, Field(ge=0, le=100)] = 30.0
    stop_soc: Annotated[float, Field(ge=0, le=100)] = 15.0
    #: stop also when the battery voltage falls this low (a worn battery's SOC is optimistic)
    stop_voltage: Annotated[float, Field(ge=0)] = 11.6
    #: consecutive low samples before stopping (one glitch must not stop the screening)
    confirm: Annotated[int, Field(ge=1, le=100)] = 3

    @model_validator(mode="after")
    def _ordered(self) -> PowerSettings:
        if self.stop_soc >= self.warn_soc:
            raise ValueError("power: stop_soc must be below warn_soc")
        return self


ModbusRole = Literal["climate", "cold-chain", "power", "telemetry"]


class ModbusDevice(_Strict):
    """A Modbus unit polled for telemetry: cabin climate, fridge logger, the bus power system.

    Units with the same ``transport`` share one line (RTU) or connection (TCP).
    """

    kind: Literal["modbus"]
    transport: str
    unit: Annotated[int, Field(ge=0, le=255)] = 1
    #: a bundled register map (drivers/modbus/maps) ...
    map: str | None = None
    #: ... or the device's own points (the fields of drivers.modbus.registers.Point)
    points: list[dict[str, Any]] | None = None
    role: ModbusRole = "telemetry"
    #: telemetry source name (topic ``telemetry/{source}``); default: the device id
    source: Annotated[str, Field(pattern=_ID)] | None = None
    period_s: Annotated[float, Field(gt=0)] = 2.0
    jitter: Annotated[float, Field(ge=0, lt=0.5)] = 0.1
    timeout_s: Annotated[float, Field(gt=0, le=10)] = 0.5
    retries: Annotated[int, Field(ge=0, le=5)] = 1
    backoff_max_s: Annotated[float, Field(gt=0)] = 60.0
    #: the readings of a ``climate`` unit older than this do not tell the conditions any more
    stale_after_s: Annotated[float, Field(gt=0)] = 60.0
    cold_chain: ColdChainSettings | None = None
    power: PowerSettings | None = None

    @field_validator("transport")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        try:
            parse_modbus_url(value)
        except DeviceConfigError as exc:
            raise ValueError(str(exc)) from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModbusDevice:
        if (self.map is None) == (self.points is None):
            raise ValueError("give either map (a bundled register map) or points, not both")
        self.register_map()  # raises with the map's and the point's name
        if self.backoff_max_s < self.period_s:
            raise ValueError("backoff_max_s must be at least period_s")
        if self.role == "cold-chain" and self.cold_chain is None:
            object.__setattr__(self, "cold_chain", ColdChainSettings())
        if self.role == "power" and self.power is None:
            object.__setattr__(self, "power", PowerSettings())
        needs = {"climate": ("temperature", "humidity"), "cold-chain": ("temperature",),
                 "power": ("battery_soc", "battery_voltage", "input_source")}  # fmt: skip
        quantities = {p.quantity for p in self.register_map().points}
        missing = [q for q in needs.get(self.role, ()) if q not in quantities]
        if missing:
            raise ValueError(f"a {self.role} device needs points with quantity {missing}")
        return self

    def register_map(self) -> RegisterMap:
        try:
            if self.map is not None:
                return load_map(self.map)
            return RegisterMap("points", parse_points(self.points or [], "points"))
        except DeviceConfigError as exc:
            raise ValueError(str(exc)) from exc


RawSignalDevice = NibpDevice | AirpuffDevice
SerialDevice = Ct80Device | NibpDevice | AirpuffDevice
MeasuringDevice = SerialDevice | BleDevice
DeviceConfig = Annotated[
    Ct80Device | NibpDevice | AirpuffDevice | BleDevice | ModbusDevice,
    Field(discriminator="kind"),
]


class StationSection(_Strict):
    """A place on the bus where one patient at a time is examined with these devices."""

    devices: list[Annotated[str, Field(pattern=_ID)]]
    #: an open visit with no reading and no command for this long closes by itself
    idle_close_s: Annotated[float, Field(gt=0)] = 1800.0


class EdgeConfig(_Strict):
    gateway: GatewaySection
    mqtt: MqttSection
    outbox: OutboxSection = OutboxSection()
    devices: dict[Annotated[str, Field(pattern=_ID)], DeviceConfig] = {}
    stations: dict[Annotated[str, Field(pattern=_ID)], StationSection] = {}
    simulation: dict[str, Any] = {}

    @model_validator(mode="after")
    def _stations_name_known_devices_once(self) -> EdgeConfig:
        seen: dict[str, str] = {}
        for station, section in self.stations.items():
            for device in section.devices:
                if device not in self.devices:
                    raise ValueError(f"station {station!r} names unknown device {device!r}")
                if isinstance(self.devices[device], ModbusDevice):
                    raise ValueError(  # noqa: TRY004 (pydantic reports ValueErrors)
                        f"station {station!r} names {device!r}, a Modbus telemetry device:"
                        " stations hold measuring devices"
                    )
                if device in seen:
                    raise ValueError(
                        f"device {device!r} is in stations {seen[device]!r} and {station!r}:"
                        " a reading must have one station"
                    )
                seen[device] = station
        return self

    @model_validator(mode="after")
    def _one_device_per_address(self) -> EdgeConfig:
        owners: dict[str, str] = {}
        for device_id, device in self.devices.items():
            if isinstance(device, BleDevice):
                other = owners.setdefault(device.address.upper(), device_id)
                if other != device_id:
                    raise ValueError(
                        f"devices {other!r} and {device_id!r} have the same address"
                        f" {device.address}: a reading must have one device"
                    )
        return self

    def station_of(self, device: str) -> str | None:
        for station, section in self.stations.items():
            if device in section.devices:
                return station
        return None

    @property
    def calibration_dir(self) -> Path:
        """Calibration records, ``<dir>/<device serial>/<record id>.json`` (append-only)."""
        return self.gateway.state_dir / "calibration"

    @property
    def ble_cursor_dir(self) -> Path:
        """Per-device glucose record cursors (drivers/ble/cursor.py)."""
        return self.gateway.state_dir / "ble"

    @property
    def recordings_dir(self) -> Path:
        """Raw records the signal analysis refused, per device (edge/pipeline/derive.py)."""
        return self.gateway.state_dir / "recordings"

    @property
    def visits_path(self) -> Path:
        return self.gateway.state_dir / "visits.sqlite"

    @property
    def outbox_path(self) -> Path:
        return self.outbox.path or self.gateway.state_dir / "outbox.sqlite"

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"santebus-{self.gateway.bus_id}"

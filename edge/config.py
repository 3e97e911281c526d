"""The gateway's one TOML configuration file, validated by pydantic (unknown keys are errors).

Secrets are never inline: TLS keys and passwords are file paths (systemd ``LoadCredential``).
The ``[simulation]`` table belongs to the simulators and is validated by them when selected.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from drivers.ble.adapter import validate_adapter
from drivers.errors import DeviceConfigError
from drivers.transport import validate_url
from edge.config_base import ID_SERIAL as _ID_SERIAL
from edge.config_base import Strict as _Strict
from edge.config_imaging import RetinographDevice
from edge.config_modbus import ModbusDevice, OperatingConditions

_ID = r"^[a-z0-9][a-z0-9_-]{0,47}$"


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


#: sun_path of struct sockaddr_un holds 108 bytes on Linux, the last one the terminating NUL
_UNIX_PATH_MAX = 107


class HealthSection(_Strict):
    """The daemon's health endpoints (edge/health): Prometheus metrics and the status socket."""

    #: serve ``GET /metrics`` (Prometheus text format) on ``metrics_host:metrics_port``
    metrics: bool = True
    #: an IP address (or ``localhost``); the metrics carry no patient data but no access control
    metrics_host: str = "127.0.0.1"
    metrics_port: Annotated[int, Field(ge=1, le=65535)] = 9108
    #: the unix socket ``santebus status`` reads; empty: ``$RUNTIME_DIRECTORY/status.sock``
    #: under systemd, else ``<state_dir>/status.sock``
    status_socket: str = ""

    @field_validator("metrics_host")
    @classmethod
    def _an_address(cls, value: str) -> str:
        if value == "localhost":
            return value
        try:
            ipaddress.ip_address(value)
        except ValueError as exc:
            raise ValueError(f"an IP address or 'localhost' is needed, got {value!r}") from exc
        return value

    @field_validator("status_socket")
    @classmethod
    def _a_socket_path(cls, value: str) -> str:
        if value and not value.startswith("/"):
            raise ValueError(f"the status socket path must be absolute, got {value!r}")
        if len(value.encode()) > _UNIX_PATH_MAX:
            raise ValueError(f"a unix socket path holds at most {_UNIX_PATH_MAX} bytes")
        return value


class _SerialDevice(_Strict):
    """A device on a serial line (RS-232 or USB), reconnected with backoff when it vanishes."""

    transport: str
    operating: OperatingConditions | None = None
    #: the device's serial number, as on its label (it names its calibration records folder)
    serial_number: Annotated[str, Field(pattern=_ID_SERIAL)]
    #: a reading with no calibration record on file is published ``preliminary`` with a note;
    #: an expired or failed record always does that, required or not
    calibration_required: bool = False
    #: a reading whose device's calibration is missing (when required), expired or failed is
    #: withheld - quarantined with the reason, never published - instead of flagged
    calibration_withhold: bool = False
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


class RefractorDevice(_SerialDevice):
    """An autorefractor / keratometer on RS-232 (drivers/devices/refractor, docs/refraction.md)."""

    kind: Literal["refractor"]


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
    #: a reading whose device's calibration is missing (when required), expired or failed is
    #: withheld - quarantined with the reason, never published - instead of flagged
    calibration_withhold: bool = False
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


RawSignalDevice = NibpDevice | AirpuffDevice
SerialDevice = Ct80Device | RefractorDevice | NibpDevice | AirpuffDevice
MeasuringDevice = SerialDevice | BleDevice
#: devices that are not read but send to the gateway (imaging) or feed telemetry (Modbus)
NON_MEASURING = (ModbusDevice, RetinographDevice)
DeviceConfig = Annotated[
    Ct80Device
    | RefractorDevice
    | NibpDevice
    | AirpuffDevice
    | BleDevice
    | ModbusDevice
    | RetinographDevice,
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
    health: HealthSection = HealthSection()
    devices: dict[Annotated[str, Field(pattern=_ID)], DeviceConfig] = Field(default_factory=dict)
    stations: dict[Annotated[str, Field(pattern=_ID)], StationSection] = Field(default_factory=dict)
    simulation: dict[str, Any] = Field(default_factory=dict)

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
            elif isinstance(device, RetinographDevice):
                other = owners.setdefault(f"dicom:{device.port}", device_id)
                if other != device_id:
                    raise ValueError(
                        f"devices {other!r} and {device_id!r} have the same DICOM port"
                        f" {device.port}: each retinograph has its own SCP"
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

"""Config of the vehicle's Modbus units and of the operating conditions of measuring devices.

Part of the gateway's TOML config (edge/config.py): ``kind = "modbus"`` devices with their
register map, role and polling, and the ``operating`` table any measuring device may declare.
Validated by pydantic like the rest (unknown keys are errors).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from drivers.errors import DeviceConfigError
from drivers.modbus.lines import parse_modbus_url
from drivers.modbus.maps import RegisterMap, resolve_map
from edge.config_base import ID_SERIAL as _ID_SERIAL
from edge.config_base import Strict as _Strict

#: a telemetry source name (it names a topic level): as device ids
_SOURCE = r"^[a-z0-9][a-z0-9_-]{0,47}$"


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
    #: read across holes of at most this many registers (0: a device that refuses reads of
    #: unmapped registers); default: the map's
    max_gap: Annotated[int, Field(ge=0, le=125)] | None = None
    role: ModbusRole = "telemetry"
    #: telemetry source name (topic ``telemetry/{source}``); default: the device id
    source: Annotated[str, Field(pattern=_SOURCE)] | None = None
    period_s: Annotated[float, Field(gt=0)] = 2.0
    jitter: Annotated[float, Field(ge=0, lt=0.5)] = 0.1
    timeout_s: Annotated[float, Field(gt=0, le=10)] = 0.5
    retries: Annotated[int, Field(ge=0, le=5)] = 1
    backoff_max_s: Annotated[float, Field(gt=0)] = 60.0
    #: the readings of a ``climate`` unit older than this do not tell the conditions any more
    stale_after_s: Annotated[float, Field(gt=0)] = 60.0
    cold_chain: ColdChainSettings | None = None
    power: PowerSettings | None = None
    #: the unit's serial number, as on its label: it names the folder of its verification
    #: records (``santebus calibrate run modbus-temperature-2pt``); default: the device id
    serial_number: Annotated[str, Field(pattern=_ID_SERIAL)] | None = None

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
        self.register_map()  # raises with the map's and the point's name
        if self.transport.startswith("modbus-rtu:") and not 1 <= self.unit <= 247:
            # 0 is the broadcast address, 248-255 are reserved (Serial Line v1.02, 2.2)
            raise ValueError(f"an RTU unit address is 1-247, got {self.unit}")
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
        """The unit's register map (bundled or its own points); ValueError naming the fault."""
        try:
            return resolve_map(self.map, self.points, self.max_gap)
        except DeviceConfigError as exc:
            raise ValueError(str(exc)) from exc

"""Scenario data of a simulated Modbus unit: its value model, its pace and its faults.

Declared in data like simulators/scenario.py's models (frozen, unknown keys refused); the seed
is the simulation's. The model's parameters are in simulated time (``speed`` simulated seconds
pass per real second); the line faults (``silent_from``, ``silent_for``) in real seconds since
the simulation started, as the gateway's timeouts are. Which map the unit serves is the
device's (``map`` in the gateway's ``[devices]``); the model must provide all its points.
Pure data: importing this module does not import pymodbus.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Rate = Annotated[float, Field(ge=0.0, le=1.0)]

#: the points each model provides (by the bundled maps' point names)
MODEL_POINTS: dict[str, frozenset[str]] = {
    "cabin": frozenset({"temperature", "humidity"}),
    "fridge": frozenset({"temperature", "door", "alarm", "high_limit", "low_limit"}),
    "power": frozenset(
        {"battery_soc", "battery_voltage", "battery_current", "battery_power", "input_source"}
    ),
    "bath": frozenset({"temperature", "humidity"}),
}


class ModbusScenario(BaseModel):
    """A Modbus unit (climate sensor, fridge logger, power system) on a simulated line.

    ``model = "bath"`` puts a temperature sensor (the xy-md02 map) on the bench of ``santebus
    calibrate run modbus-temperature-2pt``: its probe goes from bath to bath (see
    simulators/modbus/dynamics.py ``bath``); its ``bath_*`` and ``sensor_offset_c`` fields are in
    real seconds and degrees Celsius (``speed`` does not apply).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["modbus"] = "modbus"
    model: Literal["cabin", "fridge", "power", "bath"]
    #: simulated seconds per real second (360: a bus day in four minutes)
    speed: Annotated[float, Field(gt=0, le=100_000)] = 1.0

    # cabin: the daily curve of a bus parked in the sun
    #: hour of the day the simulation starts at
    start_hour: Annotated[float, Field(ge=0, lt=24)] = 8.0
    #: cabin temperature at dawn and mid-afternoon, C
    cabin_low: Annotated[float, Field(ge=-40, le=60)] = 14.0
    cabin_high: Annotated[float, Field(ge=-40, le=60)] = 27.0

    # fridge: compressor cycling 3-7 C, door openings, the logger's alarm limits
    #: open the door every N simulated seconds (0: never) ...
    door_every_s: Annotated[float, Field(ge=0)] = 0.0
    #: ... for this long
    door_open_s: Annotated[float, Field(gt=0)] = 45.0
    high_limit: Annotated[float, Field(ge=-50, le=50)] = 8.0
    low_limit: Annotated[float, Field(ge=-50, le=50)] = 2.0

    # power: the house battery
    soc_start: Annotated[float, Field(ge=0, le=100)] = 90.0
    drain_pct_per_hour: Annotated[float, Field(ge=0, le=100)] = 8.0
    #: on shore power (charging) from the start until this simulated second (None: never)
    shore_power_until_s: Annotated[float, Field(ge=0)] | None = None

    # bath: a temperature sensor on the verification bench, moved from bath to bath
    #: the baths' true temperatures, C, in the order the probe visits them (cycling)
    bath_points: tuple[Annotated[float, Field(ge=-40, le=100)], ...] = (0.0, 25.0)
    #: real seconds in each bath
    bath_every_s: Annotated[float, Field(gt=0)] = 30.0
    #: the sensor's error: it reads this much high, C
    sensor_offset_c: Annotated[float, Field(ge=-20, le=20)] = 0.0
    #: the probe's time constant in a new bath, real seconds (0: it follows at once)
    bath_tau_s: Annotated[float, Field(ge=0, le=600)] = 0.5
    #: the relative humidity it reports meanwhile, %
    bath_humidity: Annotated[float, Field(ge=0, le=100)] = 50.0

    # faults
    #: share of reads answered with exception 6, server device busy
    exception_rate: Rate = 0.0
    #: share of responses arriving with a corrupted CRC (RTU only: TCP has no CRC)
    garble_rate: Rate = 0.0
    #: the unit stops answering this many real seconds after the start (None: never) ...
    silent_from: Annotated[float, Field(ge=0)] | None = None
    #: ... for this long (None: for good)
    silent_for: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ModbusScenario:
        if self.cabin_low >= self.cabin_high:
            raise ValueError("cabin_low must be below cabin_high")
        if self.low_limit >= self.high_limit:
            raise ValueError("low_limit must be below high_limit")
        if self.door_every_s and self.door_open_s >= self.door_every_s:
            raise ValueError("door_open_s must be shorter than door_every_s")
        if self.silent_for is not None and self.silent_from is None:
            raise ValueError("silent_for needs silent_from")
        if self.model == "bath" and not self.bath_points:
            raise ValueError("a bath model needs bath_points")
        return self

    @property
    def points(self) -> frozenset[str]:
        """The point names the model gives values for."""
        return MODEL_POINTS[self.model]

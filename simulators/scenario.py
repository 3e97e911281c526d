"""Scenario data for simulated devices: the ``[simulation]`` table of the gateway config.

Declared in data (as pyvisa-sim's instruments), validated with ``extra="forbid"``; the dynamic
values come from a seeded random generator so a scenario is reproducible.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from simulators.airpuff import AirpuffScenario
from simulators.fundus_camera import RetinographScenario
from simulators.manometer import ManometerScenario
from simulators.modbus.scenario import ModbusScenario
from simulators.nibp import NibpScenario
from simulators.refractor import RefractorScenario

Rate = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EyeIop(_Strict):
    """Normal distribution of a screened population's IOP for one eye (mmHg)."""

    mean: Annotated[float, Field(ge=5, le=40)] = 15.5
    sd: Annotated[float, Field(ge=0, le=15)] = 3.0


class TonometerScenario(_Strict):
    """A CT-80 style tonometer in a screening session, or on a verification bench.

    ``model_eyes`` (mmHg, empty: patients) puts it on the bench of ``santebus calibrate run
    tonometer-model-eyes``: each exam measures the model eye in place, ``model_eye_repeats``
    exams per eye, then the next one, cycling (simulators/ct80.py).
    """

    kind: Literal["ct80"] = "ct80"
    patients_per_hour: Annotated[float, Field(gt=0, le=36000)] = 20.0
    right: EyeIop = EyeIop()
    left: EyeIop = EyeIop(mean=15.2)
    #: share of eyes whose pressure exceeds the range (``OVER``)
    over_rate: Rate = 0.02
    #: share of eyes not measured (blank field)
    blank_rate: Rate = 0.03
    #: share of single readings the device marks unreliable (parenthesised)
    unreliable_rate: Rate = 0.05
    #: share of transmitted frames with one corrupted byte (line noise)
    noise_rate: Rate = 0.0
    #: seconds the device waits for ACK before sending the record again
    ack_timeout: Annotated[float, Field(gt=0, le=60)] = 2.0
    #: pull the cable every N seconds (0: never) ...
    unplug_every: Annotated[float, Field(ge=0)] = 0.0
    #: ... for this long
    unplug_for: Annotated[float, Field(ge=0)] = 3.0
    baudrate: Annotated[int, Field(gt=0)] = 9600
    machine_no: Annotated[str, Field(pattern=r"^[0-9]{2}$")] = "01"
    #: model-eye mode: the nominal IOPs of the model eyes measured in turn (empty: patients)
    model_eyes: tuple[Annotated[float, Field(ge=2, le=55)], ...] = ()
    #: exams on each model eye before the next one is placed
    model_eye_repeats: Annotated[int, Field(ge=1, le=100)] = 3
    #: the tonometer's error on a model eye: every reading is this much high (mmHg)
    model_eye_bias: Annotated[float, Field(ge=-20, le=20)] = 0.0
    #: standard deviation of one single reading on a model eye (mmHg)
    model_eye_sd: Annotated[float, Field(ge=0, le=5)] = 0.3


class BleScenario(_Strict):
    """A Bluetooth LE health device (its profile is the device's, in ``[devices]``)."""

    kind: Literal["ble"] = "ble"
    measurements_per_hour: Annotated[float, Field(gt=0, le=36000)] = 60.0
    #: seconds the device clock is ahead of the true time ...
    clock_skew_s: float = 0.0
    #: ... or the clock was never set (its Current Time reads "not known")
    clock_unset: bool = False
    #: measurements taken before the gateway first connects
    stored_at_start: Annotated[int, Field(ge=0, le=1000)] = 0
    #: share of sent values garbled (each followed by the real one: nothing is lost)
    malformed_rate: Rate = 0.0
    #: walk out of range every N seconds (0: never) ...
    out_of_range_every: Annotated[float, Field(ge=0)] = 0.0
    #: ... for this long
    out_of_range_for: Annotated[float, Field(ge=0)] = 3.0
    #: the measurement needs an encrypted, bonded link (Just Works pairing)
    bonding_required: bool = False
    #: glucose: drop the link after this many records of a RACP transfer (0: never) ...
    racp_disconnect_after: Annotated[int, Field(ge=0)] = 0
    #: ... this many times in the device's life
    racp_disconnects: Annotated[int, Field(ge=0)] = 1
    glucose_unit: Literal["mg/dL", "mmol/L"] = "mmol/L"
    weight_unit: Literal["kg", "lb"] = "kg"
    temperature_unit: Literal["Cel", "[degF]"] = "Cel"


def _kind(value: Any) -> str:
    """The scenario's family: ``kind = "ble"`` says BLE; tonometer tables may omit it."""
    if isinstance(value, dict):
        return str(value.get("kind", "ct80"))
    return str(getattr(value, "kind", "ct80"))


DeviceScenario = Annotated[
    Annotated[TonometerScenario, Tag("ct80")]
    | Annotated[BleScenario, Tag("ble")]
    | Annotated[NibpScenario, Tag("nibp")]
    | Annotated[AirpuffScenario, Tag("airpuff")]
    | Annotated[RefractorScenario, Tag("refractor")]
    | Annotated[RetinographScenario, Tag("retinograph")]
    | Annotated[ModbusScenario, Tag("modbus")],
    Discriminator(_kind),
]


class BenchScenario(ManometerScenario):
    """A calibration bench: a reference pressure controller teed to NIBP modules' cuff ports.

    ``reference`` is where the simulated reference listens (the ``--reference`` of
    ``santebus calibrate run``); ``devices`` the NIBP modules whose cuff port is on the bench
    (their service mode reads its pressure).
    """

    reference: Annotated[str, Field(pattern=r"^serial:///")]
    devices: tuple[str, ...] = ()


class SimulationConfig(_Strict):
    seed: int = 1
    #: once production stops, seconds allowed to deliver what the devices still hold
    drain_timeout: Annotated[float, Field(gt=0)] = 60.0
    devices: dict[str, DeviceScenario] = {}
    bench: BenchScenario | None = None

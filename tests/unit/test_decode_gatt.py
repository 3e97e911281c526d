"""``santebus decode gatt``: every measurement characteristic to FHIR, errors exit 65."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from click.testing import CliRunner
from fhir.resources.R4B.observation import Observation

from drivers.ble.gatt.bp import BloodPressureMeasurement, encode_blood_pressure_measurement
from drivers.ble.gatt.glucose import (
    GlucoseConcentration,
    GlucoseMeasurement,
    GlucoseType,
    SampleLocation,
    encode_glucose_measurement,
)
from drivers.ble.gatt.plx import PlxSpotCheck, encode_plx_spot_check
from drivers.ble.gatt.registry import CHARACTERISTICS, uuid16
from drivers.ble.gatt.thermometer import TemperatureMeasurement, encode_temperature_measurement
from drivers.ble.gatt.weight import WeightMeasurement, encode_weight_measurement
from drivers.codec.ieee11073 import MedicalFloat, Special
from drivers.readings import Delivery, DeviceReading
from edge.cli import main
from edge.pipeline import fhir
from edge.pipeline.ingest import DeviceIdentity, Ingest
from tests.contract import errors
from tests.helpers import TOPICS

F = MedicalFloat.of
AT = datetime(2026, 11, 23, 9, 30, 0)


def _decode(*args: str) -> tuple[int, list[dict[str, Any]], str]:
    result = CliRunner().invoke(main, ["decode", "gatt", *args])
    obs = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    for o in obs:
        Observation.model_validate(o)
        assert errors("Observation", o) == []
    return result.exit_code, obs, result.stderr


def _codes(o: dict[str, Any]) -> list[str]:
    return [c["code"] for c in o["code"]["coding"]]


def test_blood_pressure_in_kpa_with_pulse() -> None:
    value = BloodPressureMeasurement("kPa", F("16.0"), F("10.7"), F("12.5"), AT, F("72"))
    code, (panel, pulse), _ = _decode("0x2A35", encode_blood_pressure_measurement(value).hex())
    assert code == 0
    assert _codes(panel) == ["85354-9", "150020"]
    assert [c["valueQuantity"]["code"] for c in panel["component"]] == ["kPa"] * 3
    assert _codes(pulse) == ["8867-4", "149546"]
    assert panel["effectiveDateTime"] == "2026-11-23T09:30:00+01:00"  # the device's clock


@pytest.mark.parametrize(
    ("unit", "value", "expected"),
    [("kg/L", F("0.00099"), (99.0, "mg/dL")), ("mol/L", F("0.0055"), (5.5, "mmol/L"))],
)
def test_glucose_in_either_unit(
    unit: Any, value: MedicalFloat, expected: tuple[float, str]
) -> None:
    c = GlucoseConcentration(value, unit, GlucoseType.CAPILLARY_WHOLE_BLOOD, SampleLocation.FINGER)
    m = GlucoseMeasurement(7, AT, 0, c)
    code, (obs,), _ = _decode("2a18", encode_glucose_measurement(m).hex())
    assert code == 0
    assert _codes(obs) == ["15074-8", "160184"]
    assert (obs["valueQuantity"]["value"], obs["valueQuantity"]["unit"]) == expected


def test_a_control_solution_test_is_not_a_patient_reading() -> None:
    c = GlucoseConcentration(F("0.0055"), "mol/L", GlucoseType.CONTROL_SOLUTION,
                             SampleLocation.CONTROL_SOLUTION)  # fmt: skip
    code, obs, err = _decode(
        "2A18", encode_glucose_measurement(GlucoseMeasurement(8, AT, 0, c)).hex()
    )
    assert (code, obs) == (0, [])
    assert "no measurement" in err


def test_temperature_weight_and_oximetry() -> None:
    temp = encode_temperature_measurement(TemperatureMeasurement("[degF]", F("98.6"), AT))
    code, (t,), _ = _decode("00002a1c-0000-1000-8000-00805f9b34fb", temp.hex())
    assert (code, _codes(t), t["valueQuantity"]["code"]) == (0, ["8310-5", "150364"], "[degF]")
    weight = encode_weight_measurement(WeightMeasurement("kg", F("72.450"), AT))
    code, (w,), _ = _decode("2A9D", weight.hex())
    assert (code, _codes(w), w["valueQuantity"]["value"]) == (0, ["29463-7", "188736"], 72.45)
    spot = encode_plx_spot_check(PlxSpotCheck(F("97"), MedicalFloat(special=Special.NAN), AT))
    code, (spo2, pr), _ = _decode("2A5E", spot.hex())
    assert _codes(spo2) == ["2708-6", "150456"]
    assert pr["dataAbsentReason"]["coding"][0]["code"] == "not-a-number"


def test_malformed_and_unknown_values_exit_65_with_the_reason() -> None:
    code, _, err = _decode("2A35", "0078")
    assert code == 65
    assert "systolic at byte 1: truncated" in err
    assert _decode("2AFF", "00")[0] == 65
    assert _decode("2A35", "zz")[0] == 65
    assert _decode("not-a-uuid", "00")[0] == 65


def test_every_characteristic_is_known_to_the_decoder() -> None:
    for short in (0x2A35, 0x2A36, 0x2A49, 0x2A18, 0x2A34, 0x2A52, 0x2A1C, 0x2A9D, 0x2A9E,
                  0x2A5E, 0x2A5F, 0x2A60, 0x2A08, 0x2A2B):  # fmt: skip
        assert short in CHARACTERISTICS
        assert uuid16(f"{short:04x}") == uuid16(f"0x{short:04X}") == short


@pytest.mark.parametrize(
    ("uuid", "value"),
    [
        ("2A36", "00 5000 ff07 ff07"),  # cuff pressure 80 mmHg, the other two NaN (BLS 3.2)
        ("2A49", "0000"),
        ("2A34", "00 0100"),  # context of record 1, no optional field
        ("2A52", "06 00 01 01"),  # response code: request "report stored records" succeeded
        ("2A9E", "00000000"),
        ("2A5F", "00 6100 4800"),  # continuous SpO2 97 %, PR 72 /min
        ("2A60", "0000"),
        ("2A08", "ea07 0b 17 09 1e 00"),  # 2026-11-23 09:30:00
        ("2A2B", "ea07 0b 17 09 1e 00 01 00 00"),  # + Monday, fractions 0, no adjust reason
    ],
)
def test_every_other_characteristic_decodes(uuid: str, value: str) -> None:
    code, obs, err = _decode(uuid, value)
    assert code == 0, err
    assert err.startswith("# ")  # the parsed value, named
    if uuid == "2A5F":
        assert [_codes(o)[0] for o in obs] == ["2708-6", "8889-8"]
    elif uuid == "2A36":
        assert obs == []  # a cuff pressure during inflation is not a reading


def test_the_device_precision_is_kept_in_the_published_number() -> None:
    """FHIR R4 decimal: precision is significant; IEEE 11073 carries it in the exponent."""
    outputs = []
    for mantissa, exponent in ((3670, -2), (367, -1)):
        value = encode_temperature_measurement(
            TemperatureMeasurement(unit="Cel", temperature=MedicalFloat(mantissa, exponent))
        )
        result = CliRunner().invoke(main, ["decode", "gatt", "2A1C", value.hex()])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert '"value": 36.70}' in outputs[0]
    assert '"value": 36.7}' in outputs[1]
    # the outbox payload too (what the backend receives), and it is still the same number
    reading = DeviceReading("body.temperature", 36.7, "Cel", datetime(2026, 11, 23, 10), "k",
                            decimals=2)  # fmt: skip
    (prepared,) = Ingest(None, TOPICS, "Europe/Paris").measurements(
        DeviceIdentity("thermo-1", "T-1"), Delivery((reading,), "HTS", _no_ack)
    )
    payload = fhir.encode(prepared.measurement)
    assert b'"value":36.70}' in payload
    assert json.loads(payload)["valueQuantity"]["value"] == 36.7


async def _no_ack() -> None:
    return None

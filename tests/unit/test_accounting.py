"""The demo's and end-to-end tests' accounting (simulators/accounting.py) counts right."""

from __future__ import annotations

from typing import Any

from simulators.accounting import account, derived_errors


def entry(code: str, value: float | None, time: str, device: str = "bpm-1") -> dict[str, Any]:
    return {"device": device, "code": code, "value": value, "time": time, "unit": "x"}


def obs(time: str, values: dict[str, float], device: str = "bpm-1") -> dict[str, Any]:
    """A panel when several values are given, else a single-valued Observation."""
    base: dict[str, Any] = {
        "device": {"identifier": {"value": device}},
        "effectiveDateTime": time,
        "code": {"coding": [{"code": "85354-9" if len(values) > 1 else next(iter(values))}]},
    }
    parts = [
        {"code": {"coding": [{"code": code}]}, "valueQuantity": {"value": value}}
        for code, value in values.items()
    ]
    if len(values) > 1:
        base["component"] = parts
    else:
        base["valueQuantity"] = parts[0]["valueQuantity"]
        # single readings averaged into the value (CT-80): not readings of their own
        base["component"] = [{"code": base["code"], "valueQuantity": {"value": 99.0}}]
    return base


T0 = "2026-11-23T09:00:00+01:00"
T1 = "2026-11-23T09:00:01+01:00"  # one second later: a corrected clock's rounding
T9 = "2026-11-23T09:00:09+01:00"


def test_a_panel_counts_each_component_and_a_second_of_clock_rounding_still_matches() -> None:
    ledger = [entry("8480-6", 120, T0), entry("8462-4", 80, T0), entry("8867-4", 70, T0)]
    backend = [obs(T1, {"8480-6": 120, "8462-4": 80}), obs(T1, {"8867-4": 70})]
    result = account(ledger, backend, [])
    assert (result.produced, result.stored, result.unaccounted) == (3, 3, 0)
    assert (result.duplicates_at_backend, result.unexpected_at_backend) == (0, 0)


def test_lost_duplicated_pending_and_unexpected_readings_are_each_counted() -> None:
    ledger = [entry("8480-6", 120, T0), entry("8310-5", 36.6, T0), entry("2708-6", 97, T0),
              entry("8867-4", 70, T0)]  # fmt: skip
    backend = [
        obs(T0, {"8310-5": 36.6}),
        obs(T1, {"8310-5": 36.6}),  # the same reading twice
        obs(T9, {"8310-5": 36.6}),  # too far in time to be that reading
        obs(T0, {"8480-6": 121, "8462-4": 80}),  # wrong value: not the ledger's
    ]
    outbox = [
        {"state": "pending", "payload": obs(T0, {"2708-6": 97})},
        {"state": "rejected", "payload": obs(T0, {"8480-6": 120})},
    ]
    result = account(ledger, backend, outbox)
    assert result.produced == 4
    assert (result.stored, result.in_outbox, result.rejected) == (1, 1, 1)
    assert result.unaccounted == 1  # the pulse rate went nowhere
    assert result.duplicates_at_backend == 1
    assert result.unexpected_at_backend == 3  # 36.6 at T9, and the 121/80 panel's two values


def derived(code: str, value: float | None, time: str) -> dict[str, Any]:
    """A ledger line whose value is the simulator's truth of an estimate (nibp, air puff)."""
    return {**entry(code, value, time, device="nibp-1"), "derived": True}


def test_a_derived_reading_matches_on_device_code_and_time_whatever_the_estimate() -> None:
    ledger = [derived("8480-6", 121.37, T0), derived("8462-4", 78.9, T0)]
    backend = [obs(T1, {"8480-6": 126, "8462-4": 75}, device="nibp-1")]
    result = account(ledger, backend, [])
    assert (result.produced, result.stored, result.unaccounted) == (2, 2, 0)
    # the same estimate nine seconds off is another reading: not this one's publication
    late = account(ledger, [obs(T9, {"8480-6": 126, "8462-4": 75}, device="nibp-1")], [])
    assert (late.stored, late.unaccounted, late.unexpected_at_backend) == (0, 2, 2)


def test_derived_errors_are_published_minus_true_and_a_refused_record_has_none() -> None:
    ledger = [derived("8480-6", 121.5, T0), derived("8462-4", 78.0, T0),
              derived("8480-6", 140.0, T9)]  # fmt: skip
    refused: dict[str, Any] = obs(T9, {"8480-6": 0.0}, device="nibp-1")
    refused["valueQuantity"] = {}  # published without a number (the record was refused)
    refused["component"] = []
    backend = [obs(T1, {"8480-6": 126, "8462-4": 75}, device="nibp-1"), refused]
    errors = derived_errors(ledger, backend)
    assert errors == {("nibp-1", "8480-6"): [4.5], ("nibp-1", "8462-4"): [-3.0]}

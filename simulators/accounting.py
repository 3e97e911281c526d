"""Where every reading a simulator produced ended up: backend, outbox, rejected, or lost.

A ledger line (simulators/ledger.py) names the device, the code, the value and the true
instant of one reading; an Observation carries the same, once per panel component (a blood
pressure is one Observation with systolic, diastolic and mean components). Readings match
when device, code and value are equal and the times are within ``tolerance`` seconds: a
device clock has one-second resolution, and the gateway corrects a wrong device clock by an
offset it measured to the second (drivers/ble/driver.py), so an exact time match would call a
correctly corrected reading lost.

A ledger line marked ``"derived": true`` holds the truth of a value the gateway computes from a
raw signal (an oscillometric blood pressure, an air-puff IOP): the published value is an
estimate, so these readings match on device, code and time alone (their accuracy against the
truth is the signal benchmarks' business, benchmarks/signal_accuracy.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: device, code, value (rounded to 0.1), instant (epoch seconds)
Reading = tuple[str, str, float | None, float]
Key = tuple[str, str, str, float | None]


def _value(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _key(device: str, code: str, time_iso: str, value: float | None) -> Key:
    instant = datetime.fromisoformat(time_iso)
    return (device, code, instant.isoformat(), _value(value))


def ledger_key(entry: dict[str, Any]) -> Key:
    """An exact key (time included) for one ledger line."""
    return _key(entry["device"], entry["code"], entry["time"], entry["value"])


def observation_key(obs: dict[str, Any]) -> Key:
    """An exact key for a single-valued Observation (see :func:`observation_readings`)."""
    code = obs["code"]["coding"][0]["code"]
    value = (obs.get("valueQuantity") or {}).get("value")
    return _key(obs["device"]["identifier"]["value"], code, obs["effectiveDateTime"], value)


def ledger_reading(entry: dict[str, Any]) -> Reading:
    when = datetime.fromisoformat(entry["time"]).timestamp()
    return (entry["device"], entry["code"], _value(entry["value"]), when)


def observation_readings(obs: dict[str, Any]) -> list[Reading]:
    """One reading per value: a panel's components, else the Observation's own value.

    A panel (FHIR R4 Observation with components and neither valueQuantity nor
    dataAbsentReason of its own, as the PHD IG codes a blood pressure) contributes each
    component; the CT-80's per-eye Observations have a value and components that are the
    single readings it was averaged from, which are not counted.
    """
    device = obs["device"]["identifier"]["value"]
    when = datetime.fromisoformat(obs["effectiveDateTime"]).timestamp()
    panel = "valueQuantity" not in obs and "dataAbsentReason" not in obs
    parts = obs.get("component", []) if panel else [obs]
    return [
        (device, p["code"]["coding"][0]["code"],
         _value((p.get("valueQuantity") or {}).get("value")), when)
        for p in parts
    ]  # fmt: skip


def _groups(readings: Iterable[Reading]) -> dict[tuple[str, str, float | None], list[float]]:
    out: dict[tuple[str, str, float | None], list[float]] = defaultdict(list)
    for device, code, value, when in readings:
        out[(device, code, value)].append(when)
    for times in out.values():
        times.sort()
    return out


def _match(wanted: list[float], found: list[float], tolerance: float) -> tuple[int, list[float]]:
    """How many of ``wanted`` have a distinct ``found`` within tolerance; the unmatched found.

    Both sorted; greedy in time order, which is a maximum matching for equal tolerances.
    ``wanted`` is left holding its unmatched times, for the next place to be searched.
    """
    matched, j = 0, 0
    left: list[float] = []
    unmatched_found: list[float] = []
    for t in wanted:
        while j < len(found) and found[j] < t - tolerance:
            unmatched_found.append(found[j])
            j += 1
        if j < len(found) and found[j] <= t + tolerance:
            matched += 1
            j += 1
        else:
            left.append(t)
    unmatched_found += found[j:]
    wanted[:] = left
    return matched, unmatched_found


@dataclass(frozen=True, slots=True)
class Accounting:
    produced: int
    stored: int
    in_outbox: int
    rejected: int
    unaccounted: int
    duplicates_at_backend: int
    unexpected_at_backend: int

    def line(self) -> str:
        return (
            f"demo: produced {self.produced}, stored {self.stored}, in outbox {self.in_outbox},"
            f" rejected {self.rejected}, unaccounted {self.unaccounted}"
        )


def account(
    ledger: list[dict[str, Any]],
    backend: list[dict[str, Any]],
    outbox: list[dict[str, Any]],
    tolerance: float = 2.0,
) -> Accounting:
    """Match every ledger reading to where it ended: backend, outbox (pending) or rejected.

    A reading the ledger marks ``"time_known": false`` (taken while the device's clock was not
    set: nobody can know when) matches on device, code and value alone, after the others.
    """
    # photographs are objects, not readings: simulators/photo_accounting.py accounts for them
    ledger = [e for e in ledger if e.get("kind") != "photo"]
    derived = {(e["device"], e["code"]) for e in ledger if e.get("derived")}

    def valued(readings: Iterable[Reading]) -> Iterable[Reading]:
        for device, code, value, when in readings:
            yield device, code, None if (device, code) in derived else value, when

    # telemetry packs and events may wait in the outbox too: only Observations are readings
    # (and object manifests and chunks: not Observations either)
    clinical = [
        row
        for row in outbox
        if row.get("kind", "clinical") == "clinical"
        and isinstance(row["payload"], dict)
        and row["payload"].get("resourceType", "Observation") == "Observation"
    ]
    known = _groups(valued(ledger_reading(e) for e in ledger if e.get("time_known", True)))
    unknown = _groups(valued(ledger_reading(e) for e in ledger if not e.get("time_known", True)))
    total = sum(len(t) for t in known.values()) + sum(len(t) for t in unknown.values())
    produced_times = {key: list(times) for key, times in known.items()}
    places = [
        _groups(valued(r for o in backend for r in observation_readings(o))),
        _groups(valued(r for row in clinical if row["state"] != "rejected"
                       for r in observation_readings(row["payload"]))),
        _groups(valued(r for row in clinical if row["state"] == "rejected"
                       for r in observation_readings(row["payload"]))),
    ]  # fmt: skip
    counts = [0, 0, 0]
    for n, place in enumerate(places):
        for wanted_groups, within in ((known, tolerance), (unknown, float("inf"))):
            for key, wanted in wanted_groups.items():
                matched, rest = _match(wanted, place.get(key, []), within)
                counts[n] += matched
                place[key] = rest
    duplicates = unexpected = 0
    for key, extra in places[0].items():
        for t in extra:  # a second copy of a produced reading, or something never produced
            if key in unknown or any(abs(t - w) <= tolerance for w in produced_times.get(key, [])):
                duplicates += 1
            else:
                unexpected += 1
    stored, pending, rejected = counts
    return Accounting(
        produced=total,
        stored=stored,
        in_outbox=pending,
        rejected=rejected,
        unaccounted=total - stored - pending - rejected,
        duplicates_at_backend=duplicates,
        unexpected_at_backend=unexpected,
    )


def derived_errors(
    ledger: list[dict[str, Any]], backend: list[dict[str, Any]], tolerance: float = 2.0
) -> dict[tuple[str, str], list[float]]:
    """Published minus true value of each derived reading, by (device, code).

    Derived ledger lines (``"derived": true``) carry the simulator's truth; the backend holds
    the gateway's estimate of the same reading (same device, code, time within
    ``tolerance``). A reading published without a number (its record refused) has no error.
    """
    truths: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for e in ledger:
        if e.get("derived") and e["value"] is not None:
            when = datetime.fromisoformat(e["time"]).timestamp()
            truths[(e["device"], e["code"])].append((when, float(e["value"])))
    errors: dict[tuple[str, str], list[float]] = defaultdict(list)
    for obs in backend:
        for device, code, value, when in observation_readings(obs):
            candidates = truths.get((device, code))
            if value is None or not candidates:
                continue
            t, truth = min(candidates, key=lambda c: abs(c[0] - when))
            if abs(t - when) <= tolerance:
                errors[(device, code)].append(value - truth)
    return dict(errors)

"""The daemon's handling of one received photograph (edge/retinography.py), without a network.

The handler is called as the C-STORE SCP would call it, with the bytes of a Part-10 file the
simulated retinograph builds; the outbox, the events and the visit book are the real ones.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from drivers.dicom import Status
from drivers.dicom.deidentify import find_identifiers, identifying_values
from edge.config import EdgeConfig
from edge.config_loader import ConfigError, load_config
from edge.events import Events
from edge.outbox import Budget, Outbox
from edge.retinography import Retinography
from edge.visits import VisitBook
from simulators.fundus import generate
from simulators.retinograph import Fault, Patient, build_dataset, encode
from tests.helpers import TOPICS

PATIENT = Patient(name="DUPONT^JEANNE", patient_id="1850575123456", birth_date="19850507")


def _config(tmp_path: Path, **device: Any) -> EdgeConfig:
    retino = {"kind": "retinograph", "ae_title": "SANTEBUS", "port": 11112,
              "allowed_calling_aes": ["RETINO1"], **device}  # fmt: skip
    return EdgeConfig.model_validate({
        "gateway": {"bus_id": TOPICS.bus, "state_dir": str(tmp_path / "state")},
        "mqtt": {"host": "127.0.0.1", "tls": False},
        "devices": {"retino-1": retino},
        "stations": {"eye": {"devices": ["retino-1"]}},
    })  # fmt: skip


def _photo(
    fault: Fault = Fault.NONE, seed: int = 3, side: int = 256
) -> tuple[bytes, dict[str, str]]:
    pixels, truth = generate(seed, "clean", side, side)
    ds = build_dataset(PATIENT, truth.laterality, pixels=lambda *_: pixels, rows=side,
                       columns=side, fault=fault)  # fmt: skip
    return encode(ds), identifying_values(ds)


def _setup(tmp_path: Path, box: Outbox) -> tuple[Retinography, Events, VisitBook]:
    config = _config(tmp_path)
    events = Events(box, TOPICS)
    visits = VisitBook(tmp_path / "visits.sqlite", {"eye"})
    return Retinography(config, box, TOPICS, events, visits, {}), events, visits


def test_a_photograph_is_refused_without_a_visit_then_stored_de_identified(
    tmp_path: Path,
) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    retino, _, visits = _setup(tmp_path, box)
    raw, originals = _photo()
    refused = asyncio.run(retino.on_object("retino-1", raw, "RETINO1"))
    assert (refused.status, refused.reason) == (
        Status.NOT_AUTHORIZED,
        "no visit open at station eye",
    )
    visits.start("eye", "V-UNIT-0001")
    stored = asyncio.run(retino.on_object("retino-1", raw, "RETINO1"))
    assert stored.status is Status.SUCCESS
    rows = list(box.rows())
    kinds = [json.loads(r.payload)["type"] for r in rows if r.kind == "event"]
    assert kinds == ["fundus.refused", "fundus.graded"]
    manifest = next(json.loads(r.payload) for r in rows if r.topic.endswith("/obs/retino-1"))
    assert manifest["subject"]["identifier"]["value"] == "V-UNIT-0001"
    assert sum(r.topic.startswith(f"santebus/v1/{TOPICS.bus}/obj/") for r in rows) == 1
    for row in rows:
        assert find_identifiers(row.payload, originals) == [], row.topic
    last = retino.last["eye"]
    assert (last["device"], last["eye"]) == ("retino-1", "right")
    assert last["gradable"] is not None
    # the same photograph again (a camera that did not hear the answer) adds nothing
    assert asyncio.run(retino.on_object("retino-1", raw, "RETINO1")).accepted
    assert len([r for r in box.rows() if r.kind != "event"]) == 2


def test_malformed_objects_get_their_status_and_a_full_outbox_0xa700(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", budget=Budget(max_bytes=256 * 1024, reserve_bytes=0))
    retino, events, visits = _setup(tmp_path, box)
    visits.start("eye", "V-UNIT-0002")
    for fault, status in ((Fault.LATERALITY_MISSING, Status.DATASET_MISMATCH),
                          (Fault.TRUNCATED_PIXELS, Status.CANNOT_UNDERSTAND)):  # fmt: skip
        verdict = asyncio.run(retino.on_object("retino-1", _photo(fault)[0], "RETINO1"))
        assert verdict.status is status
    full = asyncio.run(retino.on_object("retino-1", _photo(seed=4, side=512)[0], "RETINO1"))
    assert (full.status, full.code) == (Status.OUT_OF_RESOURCES, "storage-full")
    assert full.status.transient
    assert events.raised >= 3


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("devices.retino-1.allowed_calling_aes=[]", "devices.retino-1.allowed_calling_aes"),
        ("devices.retino-1.bind=somewhere", "devices.retino-1.bind"),
        ('devices.retino-1.ae_title="A\\\\B"', "devices.retino-1.ae_title"),
        ("devices.retino-1.folder=relative/dir", "devices.retino-1.folder"),
        ("devices.retino-1.chunk_size=10", "devices.retino-1.chunk_size"),
    ],
)
def test_config_errors_name_the_field(tmp_path: Path, override: str, message: str) -> None:
    path = tmp_path / "bus.toml"
    path.write_text(
        '[gateway]\nbus_id = "b"\n[mqtt]\nhost = "127.0.0.1"\ntls = false\n'
        '[devices.retino-1]\nkind = "retinograph"\nae_title = "SANTEBUS"\n'
        'allowed_calling_aes = ["RETINO1"]\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, [override])
    assert message in str(caught.value)

"""The DICOM reception end to end: a real SCU against the real SCP, and a real export folder.

The simulated retinograph (a pynetdicom SCU) sends to the gateway's C-STORE SCP on a free
loopback port; the statuses it receives are checked per fault (PS3.4 B.2.3), and the folder
watcher is run on a temporary directory, poll by poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from drivers.dicom import Status, Verdict
from drivers.dicom.deidentify import Deidentified, deidentify, find_identifiers, identifying_values
from drivers.dicom.folder import FolderSettings, FolderWatcher
from drivers.dicom.scp import DicomReceiver, ReceiverSettings
from drivers.dicom.validate import Refusal, validate
from simulators.harness import free_port
from simulators.retinograph import (
    Fault,
    Patient,
    Retinograph,
    SendResult,
    build_dataset,
    encode,
    write_file,
)

PATIENT = Patient(
    name="DUPONT-ARRIGHI^MARIE^LOUISE", patient_id="PID-77120-44", birth_date="19610730"
)
SECRET = b"test secret"
PSEUDONYM = "V-9F3K-2M"


class Store:
    """The part of the daemon these tests stand in for: validate, de-identify, keep."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.sources: list[str] = []

    async def on_object(self, raw: bytes, source: str) -> Verdict:
        self.sources.append(source)
        result = validate(raw)
        if isinstance(result, Refusal):
            return result.verdict()
        clean = deidentify(result.dataset, PSEUDONYM, SECRET)
        if isinstance(clean, Refusal):
            return clean.verdict()
        assert isinstance(clean, Deidentified)
        self.objects[str(clean.dataset.SOPInstanceUID)] = encode(clean.dataset)
        return Verdict.stored()


def _settings(**kw: object) -> ReceiverSettings:
    return ReceiverSettings(
        ae_title="SANTEBUS",
        allowed_calling_aets=("RETINO1", "RETINO2"),
        port=free_port(),
        **kw,  # type: ignore[arg-type]
    )


def _run(
    handler: Callable[[bytes, str], Awaitable[Verdict]],
    datasets: list[Dataset],
    *,
    calling_ae: str = "RETINO1",
    settings: ReceiverSettings | None = None,
) -> list[SendResult]:
    async def main() -> list[SendResult]:
        async with DicomReceiver(settings or _settings(), handler) as rx:
            camera = Retinograph("127.0.0.1", rx.port, calling_ae=calling_ae, timeout_s=5)
            return await asyncio.to_thread(camera.send, *datasets)

    return asyncio.run(main())


def test_an_image_is_accepted_stored_and_deidentified(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = Store()
    ds = build_dataset(PATIENT, "R")
    (result,) = _run(store.on_object, [ds])
    assert result == SendResult(0x0000)
    assert store.sources == ["RETINO1"]
    (stored,) = store.objects.values()
    originals = identifying_values(ds)
    assert find_identifiers(stored, originals) == []
    assert PSEUDONYM.encode() in stored
    assert "C-STORE from RETINO1: 0x0000 stored" in caplog.text
    assert find_identifiers(caplog.text.encode(), originals) == []


def test_each_fault_gets_its_failure_status_at_the_camera(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = Store()
    faults = [f for f in Fault if f is not Fault.TRUNCATED_FILE]
    datasets = [build_dataset(PATIENT, "L", fault=f) for f in faults]
    results = _run(store.on_object, datasets)
    seen = dict(zip(faults, results, strict=True))
    for fault, result in seen.items():
        assert result.status == fault.expected_status, (fault, result)
    assert "(0020,0062)" in seen[Fault.LATERALITY_MISSING].error_comment
    assert "(7FE0,0010)" in seen[Fault.NO_PIXEL_DATA].error_comment
    assert "(7FE0,0010)" in seen[Fault.TRUNCATED_PIXELS].error_comment
    assert "not sent" in seen[Fault.FOREIGN_SOP_CLASS].problem  # CT: no accepted context
    assert len(store.objects) == 2  # the clean one and the swapped-laterality one
    assert "folder" not in " ".join(store.sources)
    for ds in datasets:
        assert find_identifiers(caplog.text.encode(), identifying_values(ds)) == []


def test_a_calling_ae_not_in_the_allow_list_is_rejected_at_association() -> None:
    store = Store()
    (result,) = _run(store.on_object, [build_dataset(PATIENT, "R")], calling_ae="INTRUDER")
    assert result.status is None
    assert result.problem == "association rejected"
    assert store.sources == []


def test_echo_answers_success() -> None:
    async def main() -> int | None:
        async with DicomReceiver(_settings(), Store().on_object) as rx:
            return await asyncio.to_thread(Retinograph("127.0.0.1", rx.port).echo)

    assert asyncio.run(main()) == 0x0000


def test_a_slow_store_is_out_of_resources_and_a_crashing_one_a_processing_failure() -> None:
    async def slow(raw: bytes, source: str) -> Verdict:
        await asyncio.sleep(5)
        return Verdict.stored()

    async def crash(raw: bytes, source: str) -> Verdict:
        raise RuntimeError("disk on fire")

    ds = build_dataset(PATIENT, "R")
    (late,) = _run(slow, [ds], settings=_settings(verdict_timeout_s=0.3))
    assert late.status == Status.OUT_OF_RESOURCES
    assert "not stored within 0.3 s" in late.error_comment
    (failed,) = _run(crash, [ds])
    assert failed.status == Status.PROCESSING_FAILURE


def test_several_cameras_at_once_all_get_their_verdict() -> None:
    store = Store()

    async def main() -> list[list[SendResult]]:
        async with DicomReceiver(_settings(), store.on_object) as rx:
            cams = [Retinograph("127.0.0.1", rx.port, calling_ae=f"RETINO{i}") for i in (1, 2)]
            sends = [
                asyncio.to_thread(cam.send, *[build_dataset(PATIENT, eye) for eye in "RLRL"])
                for cam in cams
            ]
            return list(await asyncio.gather(*sends))

    results = [r for batch in asyncio.run(main()) for r in batch]
    assert [r.status for r in results] == [0] * 8
    assert len(store.objects) == 8
    assert sorted(set(store.sources)) == ["RETINO1", "RETINO2"]


def test_settings_refuse_an_open_door_and_bad_ae_titles() -> None:
    from drivers.errors import DeviceConfigError

    with pytest.raises(DeviceConfigError, match="empty"):
        ReceiverSettings(ae_title="SANTEBUS", allowed_calling_aets=())
    with pytest.raises(DeviceConfigError, match="invalid AE title"):
        ReceiverSettings(ae_title="A" * 17, allowed_calling_aets=("RETINO1",))


# -- the folder ------------------------------------------------------------------------------


def test_the_folder_watcher_sorts_every_file_and_loses_none(tmp_path: Path) -> None:
    store = Store()
    inbox = tmp_path / "export"
    inbox.mkdir()
    watcher = FolderWatcher(FolderSettings(inbox, name="nm1", settle_s=0), store.on_object)
    write_file(build_dataset(PATIENT, "R"), inbox / "good.dcm")
    write_file(build_dataset(PATIENT, "L"), inbox / "GOOD2.DCM")
    write_file(build_dataset(PATIENT, "R"), inbox / "cut.dcm", truncate=True)
    write_file(build_dataset(PATIENT, "R", fault=Fault.LATERALITY_MISSING), inbox / "nolat.dcm")
    write_file(build_dataset(PATIENT, "R", fault=Fault.FOREIGN_SOP_CLASS), inbox / "ct.dcm")
    (inbox / "notes.txt").write_text("not an image")
    growing = inbox / "growing.dcm"
    complete = encode(build_dataset(PATIENT, "L"))
    growing.write_bytes(complete[:1000])

    async def main() -> list[list[str]]:
        first = await watcher.poll_once()  # sees the files, takes none yet
        with growing.open("ab") as f:
            f.write(complete[1000:5000])  # still being copied
        second = await watcher.poll_once()
        with growing.open("ab") as f:
            f.write(complete[5000:])
        third = await watcher.poll_once()
        fourth = await watcher.poll_once()
        return [[o.name for o in poll] for poll in (first, second, third, fourth)]

    polls = asyncio.run(main())
    assert polls[0] == []
    assert polls[1] == ["GOOD2.DCM", "ct.dcm", "cut.dcm", "good.dcm", "nolat.dcm"]
    assert polls[2:] == [[], ["growing.dcm"]]
    assert sorted(p.name for p in (inbox / "done").iterdir()) == [
        "GOOD2.DCM",
        "good.dcm",
        "growing.dcm",
    ]
    refused = sorted(p.name for p in (inbox / "refused").iterdir())
    assert refused == [
        "ct.dcm",
        "ct.dcm.reason.txt",
        "cut.dcm",
        "cut.dcm.reason.txt",
        "nolat.dcm",
        "nolat.dcm.reason.txt",
    ]
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == ["notes.txt"]
    reason = (inbox / "refused" / "cut.dcm.reason.txt").read_text()
    assert reason.startswith("status 0xC000 CANNOT_UNDERSTAND\ntruncated\n")
    assert "(0008,0016)" in (inbox / "refused" / "ct.dcm.reason.txt").read_text()
    assert len(store.objects) == 3
    assert set(store.sources) == {"folder:nm1"}


def test_a_transient_refusal_or_a_crash_leaves_the_file_for_a_retry(tmp_path: Path) -> None:
    answers: list[Verdict | Exception] = [
        RuntimeError("outbox locked"),
        Verdict(Status.OUT_OF_RESOURCES, "disk-full", "outbox full"),
        Verdict.stored(),
    ]

    async def flaky(raw: bytes, source: str) -> Verdict:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    now = [0.0]
    inbox = tmp_path / "export"
    inbox.mkdir()
    settings = FolderSettings(inbox, settle_s=0, retry_s=10)
    watcher = FolderWatcher(settings, flaky, clock=lambda: now[0])
    (inbox / "done").mkdir()
    write_file(build_dataset(PATIENT, "R"), inbox / "a.dcm")
    write_file(build_dataset(PATIENT, "R"), inbox / "done" / "a.dcm")  # a name already taken

    async def main() -> list[tuple[str, ...]]:
        seen = []
        for t in (0, 1, 2, 5, 12, 13, 30):
            now[0] = t
            outcomes = await watcher.poll_once()
            seen.append(tuple(o.verdict.code if o.verdict else "error" for o in outcomes))
        return seen

    assert asyncio.run(main()) == [(), ("error",), (), (), ("disk-full",), (), ("stored",)]
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["a-1.dcm", "a.dcm"]
    assert not (inbox / "a.dcm").exists()


# -- bad input is a permanent failure; resource limits ------------------------------------------


def _corrupt_vr(ds: Dataset) -> bytes:
    """A file pydicom parses lazily and then raises NotImplementedError on (an unknown VR)."""
    raw = bytearray(encode(ds))
    at = raw.rfind(b"\xe0\x7f\x10\x00")  # (7FE0,0010) Pixel Data
    raw[at + 4 : at + 6] = b"OT"
    return bytes(raw)


def test_a_corrupt_object_gets_a_permanent_failure_not_a_processing_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydicom.uid import ExplicitVRLittleEndian
    from pynetdicom import AE, _config

    from drivers.dicom import OP_8BIT_SOP_CLASS

    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)  # the bytes as they are
    path = tmp_path / "bad.dcm"
    path.write_bytes(_corrupt_vr(build_dataset(PATIENT, "R", rows=64, columns=64)))

    def send(port: int) -> tuple[int, str]:
        ae = AE(ae_title="RETINO1")
        ae.add_requested_context(OP_8BIT_SOP_CLASS, ExplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", port, ae_title="SANTEBUS")
        assert assoc.is_established
        try:
            rsp = assoc.send_c_store(path)
            return int(rsp.Status), str(rsp.get("ErrorComment", ""))
        finally:
            assoc.release()

    async def main() -> tuple[int, str]:
        async with DicomReceiver(_settings(), Store().on_object) as rx:
            return await asyncio.to_thread(send, rx.port)

    status, comment = asyncio.run(main())
    assert status == Status.CANNOT_UNDERSTAND, hex(status)
    assert not Status(status).transient
    assert "not a readable DICOM" in comment


def test_associations_beyond_the_limit_are_rejected() -> None:
    from pynetdicom import AE

    async def main() -> list[SendResult]:
        async with DicomReceiver(_settings(max_associations=1), Store().on_object) as rx:
            ae = AE(ae_title="RETINO2")
            ae.add_requested_context("1.2.840.10008.1.1")
            held = await asyncio.to_thread(ae.associate, "127.0.0.1", rx.port, ae_title="SANTEBUS")
            assert held.is_established
            try:
                camera = Retinograph("127.0.0.1", rx.port, timeout_s=5)
                return await asyncio.to_thread(camera.send, build_dataset(PATIENT, "R"))
            finally:
                await asyncio.to_thread(held.release)

    (result,) = asyncio.run(main())
    assert result.status is None
    assert result.problem == "association rejected"
    with pytest.raises(Exception, match="max_associations"):
        _settings(max_associations=0)


def test_shutdown_is_bounded_in_total_and_names_the_threads_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import threading
    import time
    from typing import Any, cast

    release = threading.Event()
    stuck = [
        threading.Thread(target=release.wait, name=f"stuck-{i}", daemon=True) for i in range(3)
    ]
    for thread in stuck:
        thread.start()

    class FakeAE:
        active_associations = stuck

        def shutdown(self) -> None:
            pass

    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        DicomReceiver._shutdown(cast(Any, FakeAE()), 0.3)
    elapsed = time.monotonic() - started
    release.set()
    assert elapsed < 0.6  # 0.3 s in all, not 0.3 s per thread
    assert "3 association thread(s) still alive" in caplog.text
    assert "stuck-0, stuck-1, stuck-2" in caplog.text


def test_the_folder_logs_no_file_name_and_refuses_bad_files_for_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import drivers.dicom.folder as folder

    caplog.set_level(logging.DEBUG)
    store = Store()
    inbox = tmp_path / "export"
    inbox.mkdir()
    named = "DUPONT-ARRIGHI_MARIE_19610730_OD.dcm"  # what cameras do
    write_file(build_dataset(PATIENT, "R", rows=64, columns=64), inbox / named)
    (inbox / "corrupt.dcm").write_bytes(
        _corrupt_vr(build_dataset(PATIENT, "R", rows=64, columns=64))
    )
    big = encode(build_dataset(PATIENT, "L"))  # 256 x 256
    (inbox / "big.dcm").write_bytes(big)
    monkeypatch.setattr(folder, "MAX_OBJECT_BYTES", len(big) - 1)  # only "big" is over
    (inbox / "small.dcm").write_bytes(encode(build_dataset(PATIENT, "L", rows=64, columns=64)))
    watcher = FolderWatcher(FolderSettings(inbox, name="nm1", settle_s=0), store.on_object)

    async def main() -> None:
        await watcher.poll_once()
        await watcher.poll_once()

    asyncio.run(main())
    assert sorted(p.name for p in (inbox / "done").iterdir()) == [named, "small.dcm"]
    refused = inbox / "refused"
    assert (
        (refused / "corrupt.dcm.reason.txt")
        .read_text()
        .startswith("status 0xC000 CANNOT_UNDERSTAND\nunparseable\n")
    )
    assert "\ntoo-large\n" in (refused / "big.dcm.reason.txt").read_text()
    assert "DUPONT" not in caplog.text
    assert "19610730" not in caplog.text
    assert f"{folder.file_ref(named)} 0x0000 stored" in caplog.text
    assert f"{folder.file_ref('corrupt.dcm')} 0xC000 unparseable" in caplog.text


def test_a_file_the_handler_always_crashes_on_is_refused_after_max_failures(
    tmp_path: Path,
) -> None:
    calls: list[str] = []

    async def crash(raw: bytes, source: str) -> Verdict:
        calls.append(source)
        raise RuntimeError("bug")

    now = [0.0]
    inbox = tmp_path / "export"
    inbox.mkdir()
    settings = FolderSettings(inbox, settle_s=0, retry_s=10, max_failures=3)
    watcher = FolderWatcher(settings, crash, clock=lambda: now[0])
    write_file(build_dataset(PATIENT, "R"), inbox / "a.dcm")

    async def main() -> list[tuple[str, ...]]:
        seen = []
        for t in (0, 1, 11, 21, 31):
            now[0] = t
            outcomes = await watcher.poll_once()
            seen.append(tuple(o.verdict.code if o.verdict else "error" for o in outcomes))
        return seen

    assert asyncio.run(main()) == [(), ("error",), ("error",), ("handler-failed",), ()]
    assert len(calls) == 3
    reason = (inbox / "refused" / "a.dcm.reason.txt").read_text()
    assert "handler-failed" in reason
    assert "3 times (RuntimeError)" in reason

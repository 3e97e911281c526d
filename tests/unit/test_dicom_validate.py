"""drivers.dicom.validate: OP 8-bit images accepted; one refusal (code, status, tag) per fault.

Objects come from the simulated retinograph (the same builder the SCP tests send); cut and
overwritten files are fuzzed with hypothesis: a refusal, never an exception (PS3.4 B.2.3
statuses 0xA900 / 0xC000).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom.uid import DeflatedExplicitVRLittleEndian

from drivers.dicom import Status
from drivers.dicom.validate import Refusal, ValidImage, validate
from simulators.retinograph import Fault, Patient, build_dataset, encode, placeholder_fundus

PATIENT = Patient()


def _raw(fault: Fault = Fault.NONE, **kw: object) -> bytes:
    return encode(build_dataset(PATIENT, "R", fault=fault, **kw))  # type: ignore[arg-type]


def _refusal(result: ValidImage | Refusal) -> Refusal:
    assert isinstance(result, Refusal), result
    return result


def test_a_clean_photograph_is_accepted_with_its_pixels() -> None:
    result = validate(_raw(rows=128, columns=160))
    assert isinstance(result, ValidImage)
    assert (result.laterality, result.rows, result.columns) == ("R", 128, 160)
    assert result.photometric == "RGB"
    assert result.pixels.shape == (128, 160, 3)
    assert result.pixels.dtype == np.uint8
    assert np.array_equal(result.pixels, placeholder_fundus("R", 128, 160))


def test_a_parsed_dataset_is_accepted_too() -> None:
    ds = build_dataset(PATIENT, "L")
    result = validate(ds)
    assert isinstance(result, ValidImage)
    assert result.laterality == "L"


def test_jpeg_baseline_decodes_through_pydicoms_pillow_plugin() -> None:
    result = validate(_raw(jpeg=True))
    assert isinstance(result, ValidImage), result
    assert result.photometric == "YBR_FULL_422"
    assert result.pixels.shape == (256, 256, 3)
    # lossy, but the optic disc and the dark corners survive
    diff = np.abs(result.pixels.astype(int) - placeholder_fundus("R", 256, 256).astype(int))
    assert float(diff.mean()) < 4.0


@pytest.mark.parametrize(
    ("fault", "code", "status", "tag"),
    [
        (Fault.LATERALITY_MISSING, "laterality-missing", Status.DATASET_MISMATCH, "(0020,0062)"),
        (Fault.LATERALITY_INVALID, "laterality-invalid", Status.DATASET_MISMATCH, "(0020,0062)"),
        (Fault.NO_PIXEL_DATA, "pixel-data-missing", Status.DATASET_MISMATCH, "(7FE0,0010)"),
        (Fault.TRUNCATED_PIXELS, "pixel-data-truncated", Status.CANNOT_UNDERSTAND, "(7FE0,0010)"),
        (Fault.FOREIGN_SOP_CLASS, "sop-class", Status.DATASET_MISMATCH, "(0008,0016)"),
    ],
)
def test_each_fault_is_refused_with_a_code_a_status_and_the_tag(
    fault: Fault, code: str, status: Status, tag: str
) -> None:
    refusal = _refusal(validate(_raw(fault)))
    assert (refusal.code, refusal.status) == (code, status)
    assert tag in refusal.reason
    assert fault.expected_status in (status, None)
    assert PATIENT.name.split("^")[0] not in refusal.reason


def test_a_swapped_laterality_is_a_valid_object() -> None:
    result = validate(_raw(Fault.LATERALITY_SWAPPED))
    assert isinstance(result, ValidImage)
    assert result.laterality == "L"


def test_legacy_series_laterality_stands_in_and_a_contradiction_is_refused() -> None:
    ds = build_dataset(PATIENT, "R", fault=Fault.LATERALITY_MISSING)
    ds.Laterality = "L"
    result = validate(encode(ds))
    assert isinstance(result, ValidImage)
    assert result.laterality == "L"
    ds.ImageLaterality = "R"
    assert _refusal(validate(encode(ds))).code == "laterality-conflict"


@pytest.mark.parametrize(
    ("keyword", "value", "code"),
    [
        ("BitsAllocated", 16, "bits-allocated"),
        ("SamplesPerPixel", 2, "pixel-format"),
        ("PhotometricInterpretation", "MONOCHROME2", "pixel-format"),
        ("Rows", 16, "dimensions"),
        ("Columns", 20000, "dimensions"),
        ("NumberOfFrames", 3, "multi-frame"),
    ],
)
def test_a_pixel_description_outside_op_8bit_is_refused(
    keyword: str, value: object, code: str
) -> None:
    ds = build_dataset(PATIENT, "R")
    setattr(ds, keyword, value)
    refusal = _refusal(validate(encode(ds)))
    assert refusal.code == code
    assert keyword in refusal.reason


def test_an_unsupported_transfer_syntax_is_refused_by_name() -> None:
    ds = build_dataset(PATIENT, "R")
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    refusal = _refusal(validate(encode(ds)))
    assert refusal.code == "transfer-syntax"
    assert "Deflated Explicit VR Little Endian" in refusal.reason
    assert refusal.status is Status.CANNOT_UNDERSTAND


def test_garbage_and_empty_bytes_are_refused_not_raised() -> None:
    for data in (b"", b"not dicom at all", b"\0" * 128 + b"DICM" + b"\xff" * 40):
        refusal = _refusal(validate(data))
        assert refusal.status is Status.CANNOT_UNDERSTAND


def test_corrupt_jpeg_bytes_do_not_decode() -> None:
    raw = bytearray(_raw(jpeg=True))
    start = raw.find(b"\xff\xd8\xff")  # the JPEG SOI in the first fragment
    raw[start + 200 : start + 1200] = b"\x00" * 1000
    result = validate(bytes(raw))
    # baseline JPEG is robust to zeroed scan data; what must not happen is a crash
    assert isinstance(result, ValidImage | Refusal)


RAW = _raw(rows=64, columns=64)


@given(st.integers(min_value=0, max_value=len(RAW) - 1))
def test_a_file_cut_anywhere_is_refused_never_raises(cut: int) -> None:
    refusal = _refusal(validate(RAW[:cut]))
    assert refusal.status in (Status.CANNOT_UNDERSTAND, Status.DATASET_MISMATCH)
    assert refusal.reason


@given(st.binary(min_size=1, max_size=64), st.integers(min_value=0, max_value=len(RAW) - 1))
def test_bytes_overwritten_anywhere_never_raise(junk: bytes, at: int) -> None:
    raw = RAW[:at] + junk + RAW[at + len(junk) :]
    assert isinstance(validate(raw), ValidImage | Refusal)


def test_a_corrupt_vr_is_a_refusal_not_an_exception() -> None:
    raw = bytearray(RAW)
    at = raw.rfind(b"\xe0\x7f\x10\x00")  # (7FE0,0010) Pixel Data, explicit VR "OB"
    raw[at + 4 : at + 6] = b"OT"  # pydicom: NotImplementedError on first access
    refusal = _refusal(validate(bytes(raw)))
    assert (refusal.code, refusal.status) == ("unparseable", Status.CANNOT_UNDERSTAND)
    assert not refusal.status.transient


def test_bit_flipped_and_cut_files_never_raise_in_validate_or_deidentify() -> None:
    """A seeded fuzz over both transfer syntaxes (the review's reproduction, made small)."""
    import random

    from drivers.dicom.deidentify import deidentify

    rnd = random.Random(1)
    for raw in (RAW, _raw(rows=64, columns=64, jpeg=True)):
        cases = [raw[:cut] for cut in range(0, len(raw), max(1, len(raw) // 60))]
        for _ in range(150):
            flipped = bytearray(raw)
            for _ in range(rnd.randint(1, 8)):
                flipped[rnd.randrange(len(flipped))] = rnd.randrange(256)
            cases.append(bytes(flipped))
        for case in cases:
            result = validate(case)
            if isinstance(result, ValidImage):
                assert deidentify(result.dataset, "V-1", b"k") is not None
            else:
                assert result.status in (Status.CANNOT_UNDERSTAND, Status.DATASET_MISMATCH)


def test_a_jpeg_larger_than_declared_is_refused_before_decoding() -> None:
    from drivers.dicom.validate import jpeg_frame_size

    raw = bytearray(_raw(jpeg=True))
    sof = raw.find(b"\xff\xc0")
    assert jpeg_frame_size(bytes(raw[raw.find(b"\xff\xd8\xff") :])) == (256, 256, 3)
    raw[sof + 5 : sof + 9] = (30000).to_bytes(2, "big") * 2  # a 900 Mpx frame in a 10 kB file
    refusal = _refusal(validate(bytes(raw)))
    assert refusal.code == "pixel-data-dimensions"
    assert "30000 x 30000" in refusal.reason
    assert refusal.status is Status.CANNOT_UNDERSTAND


def test_more_pixels_than_a_retinograph_makes_is_refused() -> None:
    from drivers.dicom.validate import MAX_PIXELS, MAX_SIDE

    ds = build_dataset(PATIENT, "R")
    ds.Rows = ds.Columns = MAX_SIDE  # each side allowed, the total is not
    assert MAX_SIDE * MAX_SIDE > MAX_PIXELS
    refusal = _refusal(validate(encode(ds)))
    assert refusal.code == "dimensions"
    assert "pixels" in refusal.reason


def test_an_object_over_the_size_cap_is_refused_unread(monkeypatch: pytest.MonkeyPatch) -> None:
    import drivers.dicom.validate as module

    monkeypatch.setattr(module, "MAX_OBJECT_BYTES", len(RAW) - 1)
    refusal = _refusal(validate(RAW))
    assert (refusal.code, refusal.status) == ("too-large", Status.CANNOT_UNDERSTAND)


def test_pillows_decompression_bomb_guard_is_not_silenced() -> None:
    import warnings

    from PIL import Image

    from drivers.dicom.validate import quiet_pydicom

    with quiet_pydicom(), pytest.raises(Image.DecompressionBombWarning):
        warnings.warn("bomb", Image.DecompressionBombWarning, stacklevel=1)
    assert Image.MAX_IMAGE_PIXELS is not None

"""Fundus gradability: time per image against DICOM decoding, and agreement with the truth.

Issue #10 asks for a verdict within 2 s of reception on a Raspberry-Pi-class CPU; here the
grading time is measured as a ratio to decoding the same photograph from a DICOM Ophthalmic
Photography 8 Bit object (SOP class 1.2.840.10008.5.1.4.1.1.77.1.5.1) built in memory with
pydicom, uncompressed and JPEG baseline (what retinographs usually export): ``pydicom.dcmread
(BytesIO(...)).pixel_array``. Sizes 1024 x 1024 and 2048 x 1536 (a 3 Mpx camera export).

Then the agreement table on 400 simulated photographs (seeds 30000-30399, which the threshold
tuning never saw; sizes 640 / 768 / 1024 px in turn).

Run: ``.venv/bin/python -m benchmarks.fundus_grading [--n 400]``. Prints figures; never asserts.
"""

from __future__ import annotations

import argparse
import io
import platform
from collections import Counter

import numpy as np
import pydicom
from numpy.typing import NDArray
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

from benchmarks.timing import best_of
from edge.imaging import grade
from simulators.fundus import FAULTS, generate

OPHTHALMIC_PHOTOGRAPHY_8BIT = UID("1.2.840.10008.5.1.4.1.1.77.1.5.1")


def dicom_bytes(pixels: NDArray[np.uint8], jpeg: bool) -> bytes:
    """An Ophthalmic Photography 8 Bit object holding ``pixels``, as a Part 10 file."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = OPHTHALMIC_PHOTOGRAPHY_8BIT
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = OPHTHALMIC_PHOTOGRAPHY_8BIT
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "OP"
    ds.ImageLaterality = "R"
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel = 3
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if jpeg:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=92)
        ds.PhotometricInterpretation = "YBR_FULL_422"
        ds.PixelData = encapsulate([buffer.getvalue()])
        ds["PixelData"].VR = "OB"
        ds.LossyImageCompression = "01"
    else:
        ds.PhotometricInterpretation = "RGB"
        ds.PixelData = pixels.tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def timing() -> None:
    print("| image | grade | decode raw | grade/raw | decode JPEG | grade/JPEG | DICOM raw/JPEG |")
    print("|---|---|---|---|---|---|---|")
    for width, height in ((1024, 1024), (2048, 1536)):
        pixels, _ = generate(1, "clean", width, height)
        raw, jpeg = dicom_bytes(pixels, False), dicom_bytes(pixels, True)
        decoded = pydicom.dcmread(io.BytesIO(jpeg)).pixel_array
        assert decoded.shape == pixels.shape
        t_grade = best_of(lambda p=pixels: grade(p), 7)  # type: ignore[misc]
        t_raw = best_of(lambda b=raw: pydicom.dcmread(io.BytesIO(b)).pixel_array, 7)  # type: ignore[misc]
        t_jpeg = best_of(lambda b=jpeg: pydicom.dcmread(io.BytesIO(b)).pixel_array, 7)  # type: ignore[misc]
        print(
            f"| {width} x {height} | {t_grade * 1e3:.1f} ms | {t_raw * 1e3:.1f} ms "
            f"| {t_grade / t_raw:.1f} | {t_jpeg * 1e3:.1f} ms | {t_grade / t_jpeg:.2f} "
            f"| {len(raw) / 1e6:.1f} / {len(jpeg) / 1e6:.2f} MB |"
        )


def agreement(n: int) -> None:
    seen: Counter[str] = Counter()
    retake: Counter[str] = Counter()
    agree: Counter[str] = Counter()
    caught: Counter[str] = Counter()
    reason_hit: Counter[str] = Counter()
    sizes = (640, 768, 1024)
    for i, seed in enumerate(range(30_000, 30_000 + n)):
        size = sizes[i % 3]
        pixels, truth = generate(seed, None, size, size)
        verdict = grade(pixels)
        seen[truth.fault] += 1
        agree[truth.fault] += truth.gradable == verdict.gradable
        if not truth.gradable:
            retake[truth.fault] += 1
            caught[truth.fault] += not verdict.gradable
            field = {"off-centre", "no-optic-disc"}
            expected = field if truth.reason in field else {truth.reason}
            reason_hit[truth.fault] += bool(expected & set(verdict.reasons))
    print("| fault | images | truth: retake | verdict agrees | retakes caught | reason named |")
    print("|---|---|---|---|---|---|")
    for fault in FAULTS:
        r = retake[fault]
        print(
            f"| {fault} | {seen[fault]} | {r} | {agree[fault]}/{seen[fault]} "
            f"({agree[fault] / max(seen[fault], 1):.1%}) | {caught[fault]}/{r} "
            f"| {reason_hit[fault]}/{r} |"
        )
    total = sum(agree.values())
    print(
        f"| all | {n} | {sum(retake.values())} | {total}/{n} ({total / n:.1%}) "
        f"| {sum(caught.values())}/{sum(retake.values())} | {sum(reason_hit.values())} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="images in the agreement table")
    args = parser.parse_args()
    print(
        f"# fundus grading - {platform.machine()}, Python {platform.python_version()}, "
        f"NumPy {np.__version__}, pydicom {pydicom.__version__}\n"
    )
    timing()
    print()
    agreement(args.n)


if __name__ == "__main__":
    main()

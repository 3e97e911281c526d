"""The pixel checks of :func:`drivers.dicom.validate.validate`: describe, bound, then decode.

An Ophthalmic Photography 8 Bit Image (PS3.3 A.39 and C.8.17.2) has Bits Allocated (0028,0100),
Bits Stored (0028,0101) and High Bit (0028,0102) 8/8/7, Pixel Representation (0028,0103) 0,
Samples per Pixel (0028,0002) and Photometric Interpretation (0028,0004) that agree, and one
frame. Rows (0028,0010) x Columns (0028,0011) must lie within :data:`MIN_SIDE`..:data:`MAX_SIDE`
and total at most :data:`MAX_PIXELS` (a 24 Mpx retinograph photograph and a little room).

The checks run in this order, each returning a :class:`~drivers.dicom.refusal.Refusal` or
nothing: :func:`check_pixel_description` (the attributes), :func:`check_jpeg_frame` (a JPEG's
own SOF header, ITU-T T.81 B.2.2, must declare the same frame - read before any decoding, so a
decompression bomb is refused undecoded), then :func:`decode_pixels`, which gives the
:class:`ValidImage`. They expect a dataset that :mod:`drivers.dicom.validate` has already parsed
and checked (supported transfer syntax, not truncated, every element converted), and run inside
its :func:`~drivers.dicom.validate.quiet_pydicom`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.uid import UID, JPEGBaseline8Bit

from drivers.dicom import Status
from drivers.dicom.refusal import Refusal, uid_name

__all__ = [
    "MAX_PIXELS",
    "MAX_SIDE",
    "MIN_SIDE",
    "ValidImage",
    "check_jpeg_frame",
    "check_pixel_description",
    "decode_pixels",
    "jpeg_frame_size",
]

MIN_SIDE = 64
#: the longer side of a 24 Mpx sensor (6000 x 4000)
MAX_SIDE = 6000
#: Rows x Columns: a 24 Mpx photograph and a little room
MAX_PIXELS = 25_000_000
_PHOTOMETRIC = {
    1: ("MONOCHROME2",),
    3: ("RGB", "YBR_FULL_422", "YBR_FULL", "YBR_PARTIAL_420", "YBR_ICT", "YBR_RCT"),
}


@dataclass(frozen=True, slots=True, eq=False)
class ValidImage:
    """An accepted photograph: the parsed dataset (still identifying) and its decoded pixels.

    ``pixels`` is ``uint8``, shape ``(rows, columns, 3)`` in RGB (YBR decoded to RGB) or
    ``(rows, columns)`` for MONOCHROME2.
    """

    dataset: Dataset
    laterality: str
    rows: int
    columns: int
    samples_per_pixel: int
    photometric: str
    transfer_syntax: str
    pixels: NDArray[np.uint8]


def check_pixel_description(ds: Dataset) -> Refusal | None:
    """The OP 8-bit pixel attributes (PS3.3 C.8.17.2), the size limits, Pixel Data present."""
    fixed = (
        ("BitsAllocated", "(0028,0100)", 8),
        ("BitsStored", "(0028,0101)", 8),
        ("HighBit", "(0028,0102)", 7),
        ("PixelRepresentation", "(0028,0103)", 0),
    )
    for keyword, tag, expected in fixed:
        got = ds.get(keyword)
        if got != expected:
            code = "bits-allocated" if keyword == "BitsAllocated" else "pixel-format"
            return Refusal(code, f"{tag} {keyword} is {got}, OP 8 bit requires {expected}")
    spp = ds.get("SamplesPerPixel")
    if spp not in _PHOTOMETRIC:
        return Refusal("pixel-format", f"(0028,0002) SamplesPerPixel is {spp}, expected 1 or 3")
    photometric = ds.get("PhotometricInterpretation")
    if photometric not in _PHOTOMETRIC[spp]:
        return Refusal(
            "pixel-format",
            f"(0028,0004) PhotometricInterpretation {photometric} with {spp} samples per pixel",
        )
    for keyword, tag in (("Rows", "(0028,0010)"), ("Columns", "(0028,0011)")):
        side = ds.get(keyword)
        if not isinstance(side, int) or not MIN_SIDE <= side <= MAX_SIDE:
            return Refusal(
                "dimensions", f"{tag} {keyword} is {side}, expected {MIN_SIDE}..{MAX_SIDE}"
            )
    rows, columns = ds.Rows, ds.Columns
    if rows * columns > MAX_PIXELS:
        return Refusal(
            "dimensions",
            f"(0028,0010) Rows x (0028,0011) Columns is {rows} x {columns}, "
            f"more than {MAX_PIXELS} pixels",
        )
    frames = ds.get("NumberOfFrames", 1)
    if str(frames).strip() not in ("1", ""):
        return Refusal(
            "multi-frame", f"(0028,0008) NumberOfFrames is {frames}: one photograph per object"
        )
    if "PixelData" not in ds:
        return Refusal("pixel-data-missing", "(7FE0,0010) Pixel Data missing")
    return None


def check_jpeg_frame(ds: Dataset) -> Refusal | None:
    """For JPEG, the stream's own frame size must be the declared one - read before decoding.

    A small JPEG can declare a huge frame (a decompression bomb): its SOF header (ITU-T T.81
    B.2.2) is read and compared with Rows, Columns and Samples per Pixel.
    """
    if UID(ds.file_meta.TransferSyntaxUID) != JPEGBaseline8Bit:
        return None
    frame = get_frame(ds.PixelData, 0, number_of_frames=1)
    found = jpeg_frame_size(frame)
    if found is None:
        return Refusal(
            "pixel-data-undecodable",
            "(7FE0,0010) Pixel Data: no JPEG frame header (SOF) before the scan",
            Status.CANNOT_UNDERSTAND,
        )
    declared = (int(ds.Rows), int(ds.Columns), int(ds.SamplesPerPixel))
    if found != declared:
        return Refusal(
            "pixel-data-dimensions",
            f"(7FE0,0010) JPEG frame is {found[0]} x {found[1]} x {found[2]}, "
            f"Rows x Columns x SamplesPerPixel declare {declared[0]} x {declared[1]} x "
            f"{declared[2]}",
            Status.CANNOT_UNDERSTAND,
        )
    return None


def jpeg_frame_size(stream: bytes) -> tuple[int, int, int] | None:
    """(lines, samples per line, components) of a JPEG's first SOF header; None if none.

    Walks the marker segments (ITU-T T.81 B.1.1.4) from SOI up to the first SOFn or SOS; never
    decodes anything. A frame with 0 lines (defined later by DNL) counts as no header.
    """
    if stream[:2] != b"\xff\xd8":
        return None
    pos = 2
    while pos + 4 <= len(stream):
        if stream[pos] != 0xFF:
            return None
        marker = stream[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # SOS: the scan starts, no frame header met
            return None
        length = int.from_bytes(stream[pos + 2 : pos + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            header = stream[pos + 4 : pos + 10]
            if len(header) < 6:
                return None
            lines = int.from_bytes(header[1:3], "big")
            samples = int.from_bytes(header[3:5], "big")
            return (lines, samples, header[5]) if lines else None
        if length < 2:
            return None
        pos += 2 + length
    return None


def decode_pixels(ds: Dataset) -> ValidImage | Refusal:
    ts = UID(ds.file_meta.TransferSyntaxUID)
    rows, columns, spp = int(ds.Rows), int(ds.Columns), int(ds.SamplesPerPixel)
    if not ts.is_compressed:
        expected = rows * columns * spp
        got = len(ds.PixelData)
        if got < expected:
            return Refusal(
                "pixel-data-truncated",
                f"(7FE0,0010) Pixel Data has {got} bytes, Rows x Columns x SamplesPerPixel "
                f"declare {expected}",
                Status.CANNOT_UNDERSTAND,
            )
        if got > expected + 1:  # one pad byte to an even length is allowed (PS3.5 8.1.1)
            return Refusal(
                "pixel-data-length",
                f"(7FE0,0010) Pixel Data has {got} bytes, more than the declared {expected}",
                Status.CANNOT_UNDERSTAND,
            )
    try:
        array: Any = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - a codec plugin may raise anything on bad data
        if ts == JPEGBaseline8Bit and not _jpeg_decoder_available():
            return Refusal(
                "decoder-missing",
                "(7FE0,0010) Pixel Data is JPEG Baseline but no decoder is installed (Pillow)",
                Status.CANNOT_UNDERSTAND,
            )
        return Refusal(
            "pixel-data-undecodable",
            f"(7FE0,0010) Pixel Data does not decode as {uid_name(ts)} ({type(exc).__name__})",
            Status.CANNOT_UNDERSTAND,
        )
    shape = (rows, columns, spp) if spp == 3 else (rows, columns)
    if array.shape != shape or array.dtype != np.uint8:
        return Refusal(
            "pixel-data-shape",
            f"(7FE0,0010) Pixel Data decodes to {array.shape} {array.dtype}, declared {shape}",
            Status.CANNOT_UNDERSTAND,
        )
    return ValidImage(
        dataset=ds,
        laterality=str(ds.get("ImageLaterality") or ds.Laterality),
        rows=rows,
        columns=columns,
        samples_per_pixel=spp,
        photometric=str(ds.PhotometricInterpretation),
        transfer_syntax=str(ts),
        pixels=np.ascontiguousarray(array, dtype=np.uint8),
    )


def _jpeg_decoder_available() -> bool:
    from pydicom.pixels.decoders.base import JPEGBaseline8BitDecoder

    return bool(JPEGBaseline8BitDecoder.is_available)

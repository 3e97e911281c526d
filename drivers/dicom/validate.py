"""Is this object an Ophthalmic Photography 8 Bit Image the gateway can take? A pure check.

:func:`validate` takes the bytes of a DICOM Part-10 file (or a parsed pydicom ``Dataset`` with
its ``file_meta``) and returns a :class:`ValidImage` with the decoded pixels, or a
:class:`Refusal` with a stable ``code``, a reason naming the tag, and the C-STORE failure status
to answer with. It never raises on bad input: a truncated or garbled file is a refusal.

What is checked, and against which clause:

* SOP Class UID (0008,0016) is Ophthalmic Photography 8 Bit Image Storage
  (1.2.840.10008.5.1.4.1.1.77.1.5.1, PS3.4 Annex B.5) - on the network the SCP accepts no
  other presentation context, in a folder anything may turn up; SOP Instance UID (0008,0018)
  present (SOP Common module, PS3.3 C.12.1);
* Image Laterality (0020,0062) is R or L (Type 1 for OP images, PS3.3 A.39 / C.8.17.5; the
  standard also allows B, refused here since a fundus photograph is of one eye). The issue names
  (0020,0060), which is the series-level Laterality (General Series, Type 2C): when a legacy
  camera sends only (0020,0060) it stands in; when both are sent they must agree;
* the OP 8-bit image pixel description (PS3.3 A.39 and C.8.17.2): Bits Allocated (0028,0100),
  Bits Stored (0028,0101) and High Bit (0028,0102) are 8/8/7, Pixel Representation (0028,0103)
  is 0, Samples per Pixel (0028,0002) and Photometric Interpretation (0028,0004) agree, Rows
  (0028,0010) x Columns (0028,0011) within :data:`MIN_SIDE`..:data:`MAX_SIDE` and at most
  :data:`MAX_PIXELS` in all, one frame;
* Pixel Data (7FE0,0010) present, complete, and decodable to Rows x Columns x Samples per Pixel.
  Native Implicit/Explicit VR Little Endian are decoded by pydicom itself; JPEG Baseline 8 bit
  (1.2.840.10008.1.2.4.50) through pydicom's Pillow plugin (Pillow is installed as a dependency
  of matplotlib); if Pillow were missing the object is refused with code ``decoder-missing``.

Resource limits (a decompression bomb must be refused before it is decoded): an object larger
than :data:`MAX_OBJECT_BYTES` is refused unread; for JPEG the frame size in the stream's own
SOF header (ITU-T T.81 B.2.2) must equal Rows x Columns and its component count Samples per
Pixel, checked before any decoding; Pillow's own ``MAX_IMAGE_PIXELS`` guard stays armed (its
``DecompressionBombWarning`` is an error inside :func:`quiet_pydicom`, never silenced).
Retinographs export 2-24 Mpx photographs (a 24 Mpx sensor is 6000 x 4000): the limits leave
that room and no more.

Statuses (PS3.4 B.2.3): a missing or wrong attribute is ``0xA900`` (data set does not match
the SOP class); bytes that do not parse or pixels that do not decode are ``0xC000`` (cannot
understand), and so is anything pydicom or a codec raises on the way (code ``unparseable``):
:func:`validate` never raises. Both are permanent failures: the SCU must not retry them.
Reasons name tags and codes, never a patient's value.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom import config, dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

from drivers.dicom import OP_8BIT_SOP_CLASS, Status, Verdict

__all__ = [
    "MAX_OBJECT_BYTES",
    "MAX_PIXELS",
    "MAX_SIDE",
    "MIN_SIDE",
    "SUPPORTED_TRANSFER_SYNTAXES",
    "Refusal",
    "ValidImage",
    "jpeg_frame_size",
    "quiet_pydicom",
    "validate",
]

MIN_SIDE = 64
#: the longer side of a 24 Mpx sensor (6000 x 4000)
MAX_SIDE = 6000
#: Rows x Columns: a 24 Mpx photograph and a little room
MAX_PIXELS = 25_000_000
#: the Part-10 file: a native 25 Mpx RGB photograph is 75 MB
MAX_OBJECT_BYTES = 80 * 1024 * 1024
SUPPORTED_TRANSFER_SYNTAXES: tuple[str, ...] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)
_PHOTOMETRIC = {
    1: ("MONOCHROME2",),
    3: ("RGB", "YBR_FULL_422", "YBR_FULL", "YBR_PARTIAL_420", "YBR_ICT", "YBR_RCT"),
}
_UNDEFINED_LENGTH = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an object is refused: a stable code, a reason naming the tag, the C-STORE status."""

    code: str
    reason: str
    status: Status = Status.DATASET_MISMATCH

    def verdict(self) -> Verdict:
        return Verdict(self.status, self.code, self.reason)


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


def validate(data: bytes | Dataset) -> ValidImage | Refusal:
    """Check one object; see the module docstring for the rules and statuses.

    Never raises: whatever pydicom or a pixel codec raises on untrusted bytes (a corrupt VR
    makes pydicom raise ``NotImplementedError``) is a ``0xC000`` refusal naming the exception
    type only.
    """
    size = None if isinstance(data, Dataset) else len(data)
    if size is not None and size > MAX_OBJECT_BYTES:
        return Refusal(
            "too-large",
            f"object of {size} bytes, more than the {MAX_OBJECT_BYTES} accepted",
            Status.CANNOT_UNDERSTAND,
        )
    with quiet_pydicom():
        try:
            return _validate(data)
        except Exception as exc:  # noqa: BLE001 - untrusted bytes in a third-party parser
            return _unparseable(exc, size)


def _validate(data: bytes | Dataset) -> ValidImage | Refusal:
    if isinstance(data, Dataset):
        ds = data
    else:
        parsed = _parse(data)
        if isinstance(parsed, Refusal):
            return parsed
        ds = parsed
    for check in (_transfer_syntax, _truncation, _convert, _sop_class, _laterality):
        refusal = check(ds)
        if refusal is not None:
            return refusal
    return _pixel_description(ds) or _jpeg_frame(ds) or _decode(ds)


@contextmanager
def quiet_pydicom() -> Iterator[None]:
    """Read and write without pydicom's value validation: its warnings quote the value.

    A patient's malformed name or birth date must never reach the logs.

    Both switches are process-global (``warnings`` filters, pydicom's settings): the gateway
    parses DICOM on the event loop's thread only.
    """
    with warnings.catch_warnings(), config.disable_value_validation():
        warnings.simplefilter("ignore")
        bomb = _decompression_bomb_warning()
        if bomb is not None:
            warnings.simplefilter("error", bomb)  # Pillow's guard stays armed
        yield


def _decompression_bomb_warning() -> type[Warning] | None:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        return None
    return Image.DecompressionBombWarning


def _parse(data: bytes) -> Dataset | Refusal:
    try:
        return dcmread(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - untrusted bytes in a third-party parser
        return _unparseable(exc, len(data))


def _convert(ds: Dataset) -> Refusal | None:
    """Convert every element now (pydicom converts lazily) so later reads cannot fail or warn."""
    try:
        for _ in ds.iterall():
            pass
    except Exception as exc:  # noqa: BLE001 - untrusted bytes in a third-party parser
        return _unparseable(exc, None)
    return None


def _unparseable(exc: Exception, size: int | None) -> Refusal:
    where = "" if size is None else f"; {size} bytes"
    return Refusal(
        "unparseable",
        f"not a readable DICOM Part-10 file ({type(exc).__name__}{where})",
        Status.CANNOT_UNDERSTAND,
    )


def _transfer_syntax(ds: Dataset) -> Refusal | None:
    meta = getattr(ds, "file_meta", None)
    ts = None if meta is None else meta.get("TransferSyntaxUID")
    if not ts:
        return Refusal(
            "transfer-syntax-missing",
            "(0002,0010) Transfer Syntax UID missing from the file meta (file truncated?)",
            Status.CANNOT_UNDERSTAND,
        )
    if ts not in SUPPORTED_TRANSFER_SYNTAXES:
        supported = ", ".join(_name(t) for t in SUPPORTED_TRANSFER_SYNTAXES)
        return Refusal(
            "transfer-syntax",
            f"(0002,0010) Transfer Syntax UID {_name(ts)} not supported (supported: {supported})",
            Status.CANNOT_UNDERSTAND,
        )
    return None


def _truncation(ds: Dataset) -> Refusal | None:
    """Catch a cut file: pydicom stops quietly at the end; compare each value to its header."""
    for tag in list(ds.keys()):
        elem = ds.get_item(tag)
        if not isinstance(elem, RawDataElement) or elem.length == _UNDEFINED_LENGTH:
            continue
        got = 0 if elem.value is None else len(elem.value)
        if got < elem.length:
            return Refusal(
                "truncated",
                f"{tag} {_keyword(tag)}: {got} of {elem.length} bytes (file truncated)",
                Status.CANNOT_UNDERSTAND,
            )
    return None


def _sop_class(ds: Dataset) -> Refusal | None:
    sop_class = ds.get("SOPClassUID")
    if not sop_class:
        return Refusal("sop-class-missing", "(0008,0016) SOP Class UID missing")
    if sop_class != OP_8BIT_SOP_CLASS:
        return Refusal(
            "sop-class",
            f"(0008,0016) SOP Class UID is {_name(sop_class)}, expected {_name(OP_8BIT_SOP_CLASS)}",
        )
    if not ds.get("SOPInstanceUID"):
        return Refusal("sop-instance-missing", "(0008,0018) SOP Instance UID missing")
    return None


def _laterality(ds: Dataset) -> Refusal | None:
    """Image Laterality (0020,0062); a legacy (0020,0060) Laterality stands in when it is alone."""
    image, series = ds.get("ImageLaterality"), ds.get("Laterality")
    if not image and not series:
        return Refusal(
            "laterality-missing",
            "(0020,0062) Image Laterality (and (0020,0060) Laterality) missing or empty",
        )
    for tag, keyword, value in (
        ("(0020,0062)", "Image Laterality", image),
        ("(0020,0060)", "Laterality", series),
    ):
        if value and value not in ("R", "L"):
            return Refusal(
                "laterality-invalid", f"{tag} {keyword} {str(value)[:16]!r} is not R or L"
            )
    if image and series and image != series:
        return Refusal(
            "laterality-conflict",
            f"(0020,0062) Image Laterality {image} contradicts (0020,0060) Laterality {series}",
        )
    return None


def _pixel_description(ds: Dataset) -> Refusal | None:
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


def _jpeg_frame(ds: Dataset) -> Refusal | None:
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


def _decode(ds: Dataset) -> ValidImage | Refusal:
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
            f"(7FE0,0010) Pixel Data does not decode as {_name(ts)} ({type(exc).__name__})",
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


def _name(uid: str) -> str:
    u = UID(str(uid))
    return f"{u.name} ({u})" if u.name != str(u) else str(u)


def _keyword(tag: Any) -> str:
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(tag) or "private"

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

The pixel checks and :class:`ValidImage` live in :mod:`drivers.dicom.pixels`, :class:`Refusal`
in :mod:`drivers.dicom.refusal`; both are re-exported here, where the callers import them.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydicom import config, dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

from drivers.dicom import OP_8BIT_SOP_CLASS, Status
from drivers.dicom.pixels import (
    MAX_PIXELS,
    MAX_SIDE,
    MIN_SIDE,
    ValidImage,
    check_jpeg_frame,
    check_pixel_description,
    decode_pixels,
    jpeg_frame_size,
)
from drivers.dicom.refusal import Refusal, uid_name

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

#: the Part-10 file: a native 25 Mpx RGB photograph is 75 MB
MAX_OBJECT_BYTES = 80 * 1024 * 1024
SUPPORTED_TRANSFER_SYNTAXES: tuple[str, ...] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)
_UNDEFINED_LENGTH = 0xFFFFFFFF


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
    return check_pixel_description(ds) or check_jpeg_frame(ds) or decode_pixels(ds)


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
        supported = ", ".join(uid_name(t) for t in SUPPORTED_TRANSFER_SYNTAXES)
        return Refusal(
            "transfer-syntax",
            f"(0002,0010) Transfer Syntax UID {uid_name(ts)} not supported "
            f"(supported: {supported})",
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
            f"(0008,0016) SOP Class UID is {uid_name(sop_class)}, "
            f"expected {uid_name(OP_8BIT_SOP_CLASS)}",
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


def _keyword(tag: Any) -> str:
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(tag) or "private"

"""De-identification of an OP image to the visit pseudonym (PS3.15 Annex E, basic profile).

:func:`deidentify` applies the Basic Application Level Confidentiality Profile (PS3.15 E.2 and
Table E.1-1) to the attributes of that table that can occur in an Ophthalmic Photography 8 Bit
Image (IOD in PS3.3 A.39), recursively into sequence items, and returns a copy plus the list of
what was done (attribute keywords and tags, never the original values) for the audit trail.
It never raises on a bad object: what it cannot handle is a :class:`Refusal`.

Choices, within what the profile allows (docs/retinography.md has the full list):

* Patient's Name (0010,0010) and Patient ID (0010,0020) (action Z) are replaced by the visit
  pseudonym (a dummy value, action D, is permitted for them) so the backend can bind images to
  the pseudonymous visit.
* No option of Table E.1-1 is applied, in particular **not** "Retain Longitudinal Temporal
  Information": every DA, DT, TM and AS value is removed at every depth (a sweep by VR, so
  Acquisition Context items, calibration dates, Instance Coercion / Contribution DateTime and
  whatever the table lists are all covered), except at the top level the three the OP IOD makes
  Type 1 - Content Date (0008,0023), Content Time (0008,0033) and Acquisition DateTime
  (0008,002A) - which get the dummy values 19000101 / 000000 (action D), and the Type 2 Study
  Date, Study Time and Patient's Birth Date, emptied (Z). Acquisition Context Sequence
  (0040,0555), Type 2 in the OP IOD, is kept with no items. The capture time travels in the
  gateway's own visit-bound FHIR resources, not in the DICOM object.
* The X rows of Table E.1-1 (:data:`drivers.dicom.profile.X`): clinical-trial attributes (the
  optional Clinical Trial modules are removed whole), visit and request comments and reasons,
  Service Episode, Original Attributes, Contributing Equipment, Icon Image, Issuer of Accession
  Number, every physician identification sequence and Person Address / Telephone Numbers at any
  depth, Data Set Trailing Padding, Digital Signatures, MAC Parameters and Encrypted Attributes
  Sequences.
* Beyond the table (stricter): every free text value (LT, ST, UT, UC), every UN value and every
  person name (PN) left after the table is removed at any depth; the overlay (60xx) and curve
  (50xx) repeating groups go whole; every private tag is removed (no "Retain Safe Private").
* No "Retain Device Identity": Device Serial Number (0018,1000), Station Name (0008,1010) and
  Device UID (0018,1002) are removed; manufacturer, model and software version are kept (not in
  the basic profile's list, and useful to judge image quality).
* U (UIDs): every UI value that is not a registered DICOM UID (so every instance, series, study,
  frame-of-reference and referenced-instance UID) is replaced by
  ``2.25.<uuid>`` (PS3.5 B.2) where the UUID is built from HMAC-SHA256(gateway secret, original):
  the same study always maps to the same new UID, nobody without the secret can map it back.
  A UI value that is not digits and dots of at most 64 characters (PS3.5 9.1) is refused.
* The 128-byte file preamble (PS3.10 7.1) is zeroed, in the copy and by :func:`part10`.
* Patient Identity Removed (0012,0062) = YES, Longitudinal Temporal Information Modified
  (0028,0303) = REMOVED, De-identification Method (0012,0063) and
  De-identification Method Code Sequence (0012,0064) = (113100, DCM, "Basic Application
  Confidentiality Profile") as PS3.15 E.1.1 requires.
* Fail closed on the pixels (the Clean Pixel Data and Clean Recognizable Visual Features
  options are not implemented): Burned In Annotation (0028,0301) must be NO - YES is refused,
  and so is a missing or other value ("cannot confirm no burned-in annotation");
  Recognizable Visual Features (0028,0302) = YES is refused.

The tables themselves (which attribute gets which action) are in :mod:`drivers.dicom.profile`.

:func:`find_identifiers` scans any bytes for original identifying strings (whole values, and
each component of a person name) - the check behind "no original identifier leaves the gateway";
:func:`identifying_values` collects them at every depth of a dataset.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import io
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian

from drivers.dicom import Status, profile
from drivers.dicom.refusal import Refusal
from drivers.dicom.validate import quiet_pydicom

__all__ = [
    "Deidentified",
    "deidentify",
    "find_identifiers",
    "identifying_values",
    "new_uid",
    "part10",
]


@dataclass(frozen=True, slots=True, eq=False)
class Deidentified:
    """The de-identified copy and the audit list (what was done to which attribute)."""

    dataset: Dataset
    actions: tuple[str, ...]


class _RefusedError(Exception):
    """Raised deep in the walk to abandon the copy; carries the refusal to return."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.code)
        self.refusal = refusal


def new_uid(original: str, secret: bytes) -> str:
    """A UUID-derived UID (PS3.5 B.2) keyed on the gateway secret: stable, not reversible.

    Never raises: any text is hashed as UTF-8 (a valid UID is ASCII, so its bytes are the same).
    """
    data = b"dicom-uid\0" + original.encode("utf-8", "surrogatepass")
    digest = hmac.new(secret, data, hashlib.sha256).digest()
    value = int.from_bytes(digest[:16], "big")
    value &= ~(0xF000 << 64) & ~(0xC000 << 48)
    value |= (0x8000 << 64) | (0x8000 << 48)  # RFC 9562: version 8 (custom), variant 10
    return f"2.25.{uuid.UUID(int=value).int}"


def deidentify(ds: Dataset, pseudonym: str, secret: bytes) -> Deidentified | Refusal:
    """A de-identified copy of ``ds`` (see the module docstring), or a refusal.

    Never raises on a bad object: anything unexpected in the walk is a refusal too (the object
    is not stored, nothing half-cleaned leaves).
    """
    refusal = _pixels_refusal(ds)
    if refusal is not None:
        return refusal
    with quiet_pydicom():
        try:
            return _deidentify(ds, pseudonym, secret)
        except _RefusedError as exc:
            return exc.refusal
        except Exception as exc:  # noqa: BLE001 - untrusted values in a third-party library
            return Refusal(
                "deidentify-failed",
                f"the object could not be de-identified ({type(exc).__name__})",
                Status.CANNOT_UNDERSTAND,
            )


def _pixels_refusal(ds: Dataset) -> Refusal | None:
    """Fail closed on what the pixels may show (PS3.15 E.1.1: Clean Pixel Data option absent).

    Burned In Annotation (0028,0301) must be NO: YES or missing (cannot confirm) is refused.
    Recognizable Visual Features (0028,0302) YES (a face, an external eye photograph) is
    refused too: the Clean Recognizable Visual Features option is not implemented either.
    """
    burned = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if burned == "YES":
        return Refusal(
            "burned-in-annotation",
            "(0028,0301) Burned In Annotation is YES: text in the pixels cannot be de-identified",
        )
    if burned != "NO":
        return Refusal(
            "burned-in-annotation-unknown",
            "(0028,0301) Burned In Annotation missing or not NO: "
            "cannot confirm no burned-in annotation",
        )
    if str(ds.get("RecognizableVisualFeatures", "") or "").strip().upper() == "YES":
        return Refusal(
            "recognizable-visual-features",
            "(0028,0302) Recognizable Visual Features is YES: the image identifies the patient",
        )
    return None


def _deidentify(ds: Dataset, pseudonym: str, secret: bytes) -> Deidentified:
    # Not pydicom's decoded pixels nor the read buffer (validate() leaves both on ``ds``): for
    # a 24 Mpx photograph a second decoded copy is 72 MB; the copy keeps the PixelData bytes.
    skip = (getattr(ds, "_pixel_array", None), getattr(ds, "buffer", None))
    out = copy.deepcopy(ds, {id(obj): None for obj in skip if obj is not None})
    out.preamble = bytes(128)  # PS3.10 7.1: free for applications; a camera may put text in it
    actions: list[str] = ["preamble: zeroed"]
    counts = _clean(out, pseudonym, secret, "", actions)
    if counts.private:
        actions.append(f"private tags: {counts.private} removed")
    if counts.repeating:
        actions.append(f"curve/overlay groups (50xx, 60xx): {counts.repeating} elements removed")
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = profile.METHOD
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = profile.PROFILE_CODE
    out.DeidentificationMethodCodeSequence = Sequence([code])
    out.LongitudinalTemporalInformationModified = "REMOVED"
    actions.append("PatientIdentityRemoved (0012,0062): YES")
    actions.append("LongitudinalTemporalInformationModified (0028,0303): REMOVED")
    actions.append("DeidentificationMethodCodeSequence (0012,0064): 113100 DCM")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = out.SOPClassUID
    meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    meta.TransferSyntaxUID = getattr(ds, "file_meta", {}).get(
        "TransferSyntaxUID", ExplicitVRLittleEndian
    )
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    out.file_meta = meta
    actions.append("file meta: rebuilt (source AE title and original UIDs dropped)")
    return Deidentified(out, tuple(actions))


def part10(ds: Dataset) -> bytes:
    """The DICOM Part-10 file of a de-identified dataset (PS3.10 7.1: preamble, meta, data).

    Deterministic: the same dataset always gives the same bytes, so the object id derived from
    their SHA-256 (edge/publish/objects.py) makes a re-sent photograph a no-op. The 128-byte
    preamble is always written as zeros, whatever ``ds.preamble`` holds.
    """
    buf = io.BytesIO()
    with quiet_pydicom():
        ds.save_as(buf, enforce_file_format=True)
    data = buf.getvalue()
    return bytes(128) + data[128:]


def identifying_values(ds: Dataset) -> dict[str, str]:
    """The original identifying strings of ``ds``, by label (handle them like the originals).

    What :func:`find_identifiers` must never find in anything the gateway stores or publishes:
    the attributes of :data:`drivers.dicom.profile.SCANNED` and every person name, at any depth
    (a label names its path, ``ReferencedImageSequence[0].PersonName``).
    """
    found: dict[str, str] = {}
    with quiet_pydicom():
        _collect(ds, "", found)
    return found


def _collect(ds: Dataset, path: str, found: dict[str, str]) -> None:
    for elem in ds:
        keyword = elem.keyword or str(elem.tag)
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value or ()):
                _collect(item, f"{path}{keyword}[{i}].", found)
            continue
        if elem.keyword not in profile.SCANNED and elem.VR != "PN":
            continue
        if elem.value is None or elem.value == "":
            continue
        for i, item in enumerate(_as_list(elem.value)):
            text = str(item).strip()
            if text:
                found[f"{path}{keyword}" if i == 0 else f"{path}{keyword}[{i}]"] = text


def find_identifiers(data: bytes, identifiers: Mapping[str, str], min_length: int = 3) -> list[str]:
    """The labels of ``identifiers`` whose value, or a name component, occurs in ``data``.

    Case-insensitive, as UTF-8. A person name ``FAMILY^GIVEN^MIDDLE`` is also searched with
    spaces for carets and component by component (components shorter than ``min_length`` are
    skipped: two letters occur by chance). Returns labels only, never the values.
    """
    haystack = data.lower()
    hits: list[str] = []
    for label, value in identifiers.items():
        if any(needle in haystack for needle in _needles(value, min_length)):
            hits.append(label)
    return hits


def _needles(value: str, min_length: int) -> Iterable[bytes]:
    text = value.strip().lower()
    candidates = {text, text.replace("^", " ")}
    candidates.update(part.strip() for part in text.replace("=", "^").split("^"))
    return [c.encode("utf-8") for c in candidates if len(c) >= min_length]


@dataclass(slots=True)
class _Counts:
    private: int = 0
    repeating: int = 0


def _clean(ds: Dataset, pseudonym: str, secret: bytes, path: str, actions: list[str]) -> _Counts:
    """Apply the table to ``ds`` and, recursively, to its sequence items; count bulk removals."""
    counts = _Counts()
    for elem in list(ds):
        if elem.tag.is_private:
            del ds[elem.tag]
            counts.private += 1
        elif any(lo <= elem.tag.group <= hi for lo, hi in profile.REPEATING_GROUPS):
            del ds[elem.tag]
            counts.repeating += 1
    _apply_table(ds, pseudonym, path, actions)
    for elem in list(ds):
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value or ()):
                sub = _clean(item, pseudonym, secret, f"{path}{elem.keyword}[{i}].", actions)
                counts.private += sub.private
                counts.repeating += sub.repeating
        else:
            _sweep(ds, elem, secret, path, actions)
    return counts


def _sweep(ds: Dataset, elem: DataElement, secret: bytes, path: str, actions: list[str]) -> None:
    """The rules by VR, for what the table does not name (see the module docstring)."""
    label = f"{path}{_label(elem.keyword or str(elem.tag))}"
    vr = elem.VR
    empty = elem.value is None or elem.value == ""
    kept_date = path == "" and elem.keyword in profile.TOP_LEVEL_DATES
    if vr == "UN":
        del ds[elem.tag]
        actions.append(f"{label}: unreadable (UN) value removed")
    elif empty:
        return
    elif vr == "PN" and elem.keyword not in profile.PSEUDONYM:
        del ds[elem.tag]
        actions.append(f"{label}: person name removed")
    elif vr in profile.DATE_VRS and not kept_date:
        del ds[elem.tag]
        actions.append(f"{label}: date/time/age removed (X)")
    elif vr in profile.TEXT_VRS:
        del ds[elem.tag]
        actions.append(f"{label}: free text removed (X)")
    elif vr == "UI" and elem.keyword not in profile.KEEP_UID:
        if _replace_uids(elem, secret, label):
            actions.append(f"{label}: new keyed UID (U)")
    elif vr == "UI":
        _check_uids(elem, label)


def _apply_table(ds: Dataset, pseudonym: str, path: str, actions: list[str]) -> None:
    for keyword in profile.PSEUDONYM:
        if keyword in ds:
            setattr(ds, keyword, pseudonym)
            actions.append(f"{path}{_label(keyword)}: replaced by the visit pseudonym")
    for keyword in profile.X:
        if keyword in ds:
            delattr(ds, keyword)
            actions.append(f"{path}{_label(keyword)}: removed (X)")
    for keyword in profile.Z:
        if keyword in ds:
            ds[keyword].value = ""
            actions.append(f"{path}{_label(keyword)}: emptied (Z)")
    for keyword in profile.EMPTIED_SEQUENCES:
        if keyword in ds:
            ds[keyword].value = Sequence()
            actions.append(f"{path}{_label(keyword)}: emptied (Z, no items)")
    for keyword, dummy in profile.D.items():
        if keyword in ds:
            setattr(ds, keyword, dummy)
            actions.append(f"{path}{_label(keyword)}: dummy value (D)")


def _check_uids(elem: DataElement, label: str) -> list[str]:
    """The UIDs of a UI element as text; an invalid one refuses the object (PS3.5 9.1)."""
    uids = [str(uid).strip("\0 ") for uid in _as_list(elem.value)]
    for uid in uids:
        if len(uid) > 64 or not profile.UID_SYNTAX.fullmatch(uid):
            raise _RefusedError(
                Refusal("uid-invalid", f"{label}: not a valid UID (digits and dots, PS3.5 9.1)")
            )
    return uids


def _replace_uids(elem: DataElement, secret: bytes, label: str) -> bool:
    """Replace each instance UID of a UI element; registered (class, scheme) UIDs are kept."""
    originals = _check_uids(elem, label)
    replaced = [uid if UID(uid).name != uid else new_uid(uid, secret) for uid in originals]
    elem.value = replaced[0] if len(replaced) == 1 else replaced
    return replaced != originals


def _as_list(value: Any) -> list[Any]:
    """A pydicom value as a list: multi-valued elements come as MultiValue, single ones bare."""
    if isinstance(value, MultiValue | list | tuple):
        return list(value)
    return [value]


def _label(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    if tag is None:
        return keyword
    return f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"

"""De-identification of an OP image to the visit pseudonym (PS3.15 Annex E, basic profile).

:func:`deidentify` applies the Basic Application Level Confidentiality Profile (PS3.15 E.2 and
Table E.1-1) to the attributes of that table that can occur in an Ophthalmic Photography 8 Bit
Image (IOD in PS3.3 A.39), recursively into sequence items, and returns a copy plus the list of
what was done (attribute keywords and tags, never the original values) for the audit trail.

Choices, within what the profile allows:

* Patient's Name (0010,0010) and Patient ID (0010,0020) (action Z) are replaced by the visit
  pseudonym (a dummy value, action D, is permitted for them) so the backend can bind images to
  the pseudonymous visit.
* No option of Table E.1-1 is applied, in particular **not** "Retain Longitudinal Temporal
  Information": every date and time of the table is removed (X) or emptied (Z), except the three
  the OP IOD makes Type 1 - Content Date (0008,0023), Content Time (0008,0033) and Acquisition
  DateTime (0008,002A) - which get the dummy values 19000101 / 000000 (action D). The capture
  time travels in the gateway's own visit-bound FHIR resources, not in the DICOM object.
* No "Retain Device Identity": Device Serial Number (0018,1000), Station Name (0008,1010) and
  Device UID (0018,1002) are removed; manufacturer, model and software version are kept (not in
  the basic profile's list, and useful to judge image quality).
* U (UIDs): every UI value that is not a registered DICOM UID (so every instance, series, study,
  frame-of-reference and referenced-instance UID) is replaced by
  ``2.25.<uuid>`` (PS3.5 B.2) where the UUID is built from HMAC-SHA256(gateway secret, original):
  the same study always maps to the same new UID, nobody without the secret can map it back.
* Every private tag is removed (no "Retain Safe Private" option); so is every person name (PN)
  left after the table, which is stricter than the profile.
* Patient Identity Removed (0012,0062) = YES, Longitudinal Temporal Information Modified
  (0028,0303) = REMOVED, De-identification Method (0012,0063) and
  De-identification Method Code Sequence (0012,0064) = (113100, DCM, "Basic Application
  Confidentiality Profile") as PS3.15 E.1.1 requires.
* Burned In Annotation (0028,0301) = YES is refused: the Clean Pixel Data option (text burned
  into the photograph) is not implemented.

:func:`find_identifiers` scans any bytes for original identifying strings (whole values, and
each component of a person name) - the check behind "no original identifier leaves the gateway".
"""

from __future__ import annotations

import copy
import hashlib
import hmac
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

from drivers.dicom.validate import Refusal, quiet_pydicom

__all__ = ["Deidentified", "deidentify", "find_identifiers", "identifying_values", "new_uid"]


def _words(text: str) -> tuple[str, ...]:
    """The attribute keywords of one action column (kept as text to stay readable)."""
    return tuple(text.split())


_Z = _words(  # emptied (zero length): Type 2 in the OP IOD
    "PatientBirthDate PatientSex StudyDate StudyTime AccessionNumber StudyID "
    "ReferringPhysicianName ContentCreatorName"
)
_X = _words(  # removed
    "PatientBirthTime PatientAge PatientSize PatientWeight OtherPatientIDs OtherPatientIDsSequence "
    "OtherPatientNames PatientBirthName PatientMotherBirthName PatientAddress "
    "PatientTelephoneNumbers PatientTelecomInformation EthnicGroup PatientReligiousPreference "
    "PatientComments AdditionalPatientHistory MedicalRecordLocator MilitaryRank BranchOfService "
    "Occupation CountryOfResidence RegionOfResidence IssuerOfPatientID "
    "IssuerOfPatientIDQualifiersSequence PatientInsurancePlanCodeSequence ResponsiblePerson "
    "ResponsibleOrganization PatientState PregnancyStatus MedicalAlerts Allergies SmokingStatus "
    "LastMenstrualDate SpecialNeeds CurrentPatientLocation PatientInstitutionResidence "
    "AdmissionID AdmittingDiagnosesDescription AdmittingDiagnosesCodeSequence "
    "ReferencedPatientSequence ReferencedPatientPhotoSequence ReferencedStudySequence "
    "StudyDescription ReferringPhysicianAddress ReferringPhysicianTelephoneNumbers "
    "ReferringPhysicianIdentificationSequence ConsultingPhysicianName PhysiciansOfRecord "
    "PhysiciansOfRecordIdentificationSequence NameOfPhysiciansReadingStudy "
    "PhysiciansReadingStudyIdentificationSequence RequestingPhysician RequestingService "
    "SeriesDate SeriesTime AcquisitionDate AcquisitionTime InstanceCreationDate "
    "InstanceCreationTime TimezoneOffsetFromUTC SeriesDescription OperatorsName "
    "OperatorIdentificationSequence PerformingPhysicianName "
    "PerformingPhysicianIdentificationSequence ProtocolName PerformedProcedureStepStartDate "
    "PerformedProcedureStepStartTime PerformedProcedureStepEndDate PerformedProcedureStepEndTime "
    "PerformedProcedureStepID PerformedProcedureStepDescription PerformedStationName "
    "PerformedLocation RequestAttributesSequence ScheduledProcedureStepDescription "
    "RequestedProcedureDescription RequestedProcedureID PlacerOrderNumberImagingServiceRequest "
    "FillerOrderNumberImagingServiceRequest InstitutionName InstitutionAddress "
    "InstitutionalDepartmentName InstitutionalDepartmentTypeCodeSequence InstitutionCodeSequence "
    "StationName DeviceSerialNumber DeviceUID ImageComments DerivationDescription "
    "AcquisitionDeviceProcessingDescription PersonName TextValue"
)
_D = {"ContentDate": "19000101", "ContentTime": "000000", "AcquisitionDateTime": "19000101000000"}
_PSEUDONYM = ("PatientName", "PatientID")
_KEEP_UID = frozenset({"SOPClassUID", "ReferencedSOPClassUID", "MediaStorageSOPClassUID"})
_PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
_METHOD = "PS3.15 E.1-1 basic profile; santebus-edge keyed UIDs; no options"
#: labels of :func:`identifying_values`, the attributes worth scanning output bytes for
_SCANNED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "AccessionNumber",
    "StudyID",
    "InstitutionName",
    "ReferringPhysicianName",
    "OperatorsName",
    "PerformingPhysicianName",
    "DeviceSerialNumber",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "FrameOfReferenceUID",
)


@dataclass(frozen=True, slots=True, eq=False)
class Deidentified:
    """The de-identified copy and the audit list (what was done to which attribute)."""

    dataset: Dataset
    actions: tuple[str, ...]


def new_uid(original: str, secret: bytes) -> str:
    """A UUID-derived UID (PS3.5 B.2) keyed on the gateway secret: stable, not reversible."""
    digest = hmac.new(secret, b"dicom-uid\0" + original.encode("ascii"), hashlib.sha256).digest()
    value = int.from_bytes(digest[:16], "big")
    value &= ~(0xF000 << 64) & ~(0xC000 << 48)
    value |= (0x8000 << 64) | (0x8000 << 48)  # RFC 9562: version 8 (custom), variant 10
    return f"2.25.{uuid.UUID(int=value).int}"


def deidentify(ds: Dataset, pseudonym: str, secret: bytes) -> Deidentified | Refusal:
    """A de-identified copy of ``ds`` (see the module docstring), or a refusal."""
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        return Refusal(
            "burned-in-annotation",
            "(0028,0301) Burned In Annotation is YES: text in the pixels cannot be de-identified",
        )
    with quiet_pydicom():
        return _deidentify(ds, pseudonym, secret)


def _deidentify(ds: Dataset, pseudonym: str, secret: bytes) -> Deidentified:
    out = copy.deepcopy(ds)
    actions: list[str] = []
    removed_private = _clean(out, pseudonym, secret, "", actions)
    if removed_private:
        actions.append(f"private tags: {removed_private} removed")
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = _METHOD
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = _PROFILE_CODE
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


def identifying_values(ds: Dataset) -> dict[str, str]:
    """The original identifying strings of ``ds``, by keyword (handle them like the originals).

    What :func:`find_identifiers` must never find in anything the gateway stores or publishes.
    """
    found: dict[str, str] = {}
    for keyword in _SCANNED:
        value = ds.get(keyword)
        if value is None or value == "":
            continue
        for i, item in enumerate(_as_list(value)):
            text = str(item).strip()
            if text:
                found[keyword if i == 0 else f"{keyword}[{i}]"] = text
    return found


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


def _clean(ds: Dataset, pseudonym: str, secret: bytes, path: str, actions: list[str]) -> int:
    """Apply the table to ``ds`` and, recursively, to its sequence items; count private tags."""
    private = [elem.tag for elem in ds if elem.tag.is_private]
    for tag in private:
        del ds[tag]
    removed = len(private)
    _apply_table(ds, pseudonym, path, actions)
    for elem in list(ds):
        if elem.VR == "PN" and elem.keyword not in _PSEUDONYM and elem.value not in ("", None):
            del ds[elem.tag]
            actions.append(f"{path}{_label(elem.keyword or str(elem.tag))}: person name removed")
        elif elem.VR == "UI" and elem.keyword not in _KEEP_UID and elem.value:
            if _replace_uids(elem, secret):
                actions.append(f"{path}{_label(elem.keyword)}: new keyed UID (U)")
        elif elem.VR == "SQ":
            for i, item in enumerate(elem.value):
                removed += _clean(item, pseudonym, secret, f"{path}{elem.keyword}[{i}].", actions)
    return removed


def _apply_table(ds: Dataset, pseudonym: str, path: str, actions: list[str]) -> None:
    for keyword in _PSEUDONYM:
        if keyword in ds:
            setattr(ds, keyword, pseudonym)
            actions.append(f"{path}{_label(keyword)}: replaced by the visit pseudonym")
    for keyword in _X:
        if keyword in ds:
            delattr(ds, keyword)
            actions.append(f"{path}{_label(keyword)}: removed (X)")
    for keyword in _Z:
        if keyword in ds:
            ds[keyword].value = ""
            actions.append(f"{path}{_label(keyword)}: emptied (Z)")
    for keyword, dummy in _D.items():
        if keyword in ds:
            setattr(ds, keyword, dummy)
            actions.append(f"{path}{_label(keyword)}: dummy value (D)")


def _replace_uids(elem: DataElement, secret: bytes) -> bool:
    """Replace each instance UID of a UI element; registered (class, scheme) UIDs are kept."""
    originals = [str(uid) for uid in _as_list(elem.value)]
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

"""drivers.dicom.deidentify: PS3.15 basic profile to the visit pseudonym, checked on the bytes.

Every original identifier (names, IDs, birth date, UIDs, nested and private ones) is searched
for in the encoded output and in the audit list; UIDs must map consistently per gateway secret.
"""

from __future__ import annotations

import re

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from drivers.dicom.deidentify import (
    Deidentified,
    deidentify,
    find_identifiers,
    identifying_values,
    new_uid,
)
from drivers.dicom.validate import Refusal, ValidImage, validate
from simulators.retinograph import Patient, build_dataset, encode

PATIENT = Patient(name="KERGOAT^ANNE-SOIZIC", patient_id="29-0517-7731", birth_date="19470923")
PSEUDONYM = "V7Q2-KX4M"
SECRET = b"gateway secret for tests"


def _deid(ds: Dataset, secret: bytes = SECRET) -> Deidentified:
    result = deidentify(ds, PSEUDONYM, secret)
    assert isinstance(result, Deidentified), result
    return result


def _with_nested_identifiers(ds: Dataset) -> Dataset:
    ref = Dataset()
    ref.ReferencedSOPClassUID = ds.SOPClassUID
    ref.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    ref.PersonName = PATIENT.name  # (0040,A123), in an item: must go too
    ds.ReferencedImageSequence = Sequence([ref])
    ds.PerformingPhysicianName = "LE BIHAN^YANN"
    ds.PatientAddress = "12 RUE DES GENETS 29270 CARHAIX"
    return ds


def test_no_original_identifier_survives_in_the_bytes_and_the_pseudonym_does() -> None:
    original = _with_nested_identifiers(build_dataset(PATIENT, "R"))
    originals = identifying_values(original)
    assert {"PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID"} <= set(originals)
    before = encode(original)
    assert set(find_identifiers(before, originals)) == set(originals)  # the scanner works

    out = encode(_deid(original).dataset)

    assert find_identifiers(out, originals) == []
    assert find_identifiers(out, {"given name": "ANNE-SOIZIC", "family": "KERGOAT"}) == []
    assert PSEUDONYM.encode() in out
    assert b"CARHAIX" not in out.upper()
    assert b"LE BIHAN" not in out.upper()


def test_the_attributes_follow_the_basic_profile() -> None:
    ds = _deid(build_dataset(PATIENT, "L")).dataset
    assert (ds.PatientName, ds.PatientID) == (PSEUDONYM, PSEUDONYM)
    assert ds.PatientBirthDate == ""
    assert ds.AccessionNumber == ""
    assert ds.StudyID == ""
    for gone in ("OtherPatientIDs", "InstitutionName", "OperatorsName", "DeviceSerialNumber"):
        assert gone not in ds
    assert ds.ReferringPhysicianName == ""
    assert (ds.ContentDate, ds.AcquisitionDateTime) == ("19000101", "19000101000000")
    assert not any(elem.tag.is_private for elem in ds)
    assert ds.PatientIdentityRemoved == "YES"
    code = ds.DeidentificationMethodCodeSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator) == ("113100", "DCM")
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"
    # what the image needs is kept
    assert (ds.ImageLaterality, ds.Modality, ds.Manufacturer) == ("L", "OP", "santebus-sim")


def test_the_deidentified_object_is_still_a_valid_op_image() -> None:
    out = _deid(build_dataset(PATIENT, "R")).dataset
    result = validate(encode(out))
    assert isinstance(result, ValidImage), result
    assert result.dataset.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID


def test_uids_are_replaced_consistently_per_study_and_differ_per_secret() -> None:
    first = build_dataset(PATIENT, "R")
    second = build_dataset(PATIENT, "L", study_uid=first.StudyInstanceUID)
    a, b = _deid(_with_nested_identifiers(first)).dataset, _deid(second).dataset
    assert a.StudyInstanceUID == b.StudyInstanceUID != first.StudyInstanceUID
    assert a.SOPInstanceUID != b.SOPInstanceUID
    assert a.ReferencedImageSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID
    assert a.ReferencedImageSequence[0].ReferencedSOPClassUID == first.SOPClassUID
    assert a.SOPClassUID == first.SOPClassUID  # registered UIDs are kept
    again = _deid(first).dataset
    assert again.StudyInstanceUID == a.StudyInstanceUID  # deterministic
    other = _deid(build_dataset(PATIENT, "R", study_uid=first.StudyInstanceUID), b"other")
    assert other.dataset.StudyInstanceUID != a.StudyInstanceUID
    for uid in (a.StudyInstanceUID, a.SeriesInstanceUID, a.SOPInstanceUID, a.FrameOfReferenceUID):
        assert re.fullmatch(r"2\.25\.(0|[1-9][0-9]*)", uid)
        assert len(uid) <= 64


def test_new_uid_is_a_version_8_uuid() -> None:
    import uuid

    value = uuid.UUID(int=int(new_uid("1.2.3.4", SECRET).removeprefix("2.25.")))
    assert (value.version, value.variant) == (8, uuid.RFC_4122)


def test_the_audit_names_attributes_never_values() -> None:
    original = _with_nested_identifiers(build_dataset(PATIENT, "R"))
    result = _deid(original)
    audit = "\n".join(result.actions).encode()
    assert find_identifiers(audit, identifying_values(original)) == []
    assert "PatientName (0010,0010): replaced by the visit pseudonym" in result.actions
    assert "PatientBirthDate (0010,0030): emptied (Z)" in result.actions
    assert "ReferencedImageSequence[0].PersonName (0040,A123): removed (X)" in result.actions
    assert "private tags: 2 removed" in result.actions


def test_burned_in_annotation_is_refused() -> None:
    ds = build_dataset(PATIENT, "R")
    ds.BurnedInAnnotation = "YES"
    refusal = deidentify(ds, PSEUDONYM, SECRET)
    assert isinstance(refusal, Refusal)
    assert refusal.code == "burned-in-annotation"
    assert "(0028,0301)" in refusal.reason


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b"...doe^jane...", ["name"]),
        (b"...JANE DOE...", ["name"]),
        (b"...Doe, J....", ["name"]),
        (b"...1950-03-14 / 12345...", []),
        (b"...19500314...", ["birth"]),
        (b"...JO...", []),  # components shorter than 3 are not searched
    ],
)
def test_find_identifiers_searches_values_and_name_components(
    data: bytes, found: list[str]
) -> None:
    ids = {"name": "DOE^JANE^JO", "birth": "19500314", "id": "PID-123456"}
    assert find_identifiers(data, ids) == found

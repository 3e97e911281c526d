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
    part10,
)
from drivers.dicom.validate import Refusal, ValidImage, quiet_pydicom, validate
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


# -- PS3.15 E.1-1, every category at once, nested ----------------------------------------------

#: one unique token per attribute: none of them may survive anywhere in the output bytes
_TEXT = {
    "ClinicalTrialSubjectID": "CTSUBJ-7781",
    "ClinicalTrialSubjectReadingID": "CTREAD-5521",
    "ClinicalTrialSponsorName": "SPONSOR-ACME-PHARMA",
    "ClinicalTrialProtocolID": "PROTO-ZX-42",
    "ClinicalTrialSiteName": "SITE-QUIMPERLE",
    "ClinicalTrialCoordinatingCenterName": "COORD-BREST",
    "ClinicalTrialProtocolEthicsCommitteeApprovalNumber": "ETHICS-2211",
    "CommentsOnThePerformedProcedureStep": "PPS-COMMENT-KERGOAT",
    "AcquisitionComments": "ACQ-COMMENT-ANNE",
    "ServiceEpisodeID": "EPISODE-99812",
    "ServiceEpisodeDescription": "EPISODE-DESC-CARHAIX",
    "ReasonForVisit": "VISIT-REASON-DIABETE",
    "VisitComments": "VISIT-COMMENT-LANDIVISIAU",
    "StudyComments": "STUDY-COMMENT-PLOUGUER",
    "RequestedProcedureComments": "RP-COMMENT-HUELGOAT",
    "ImagingServiceRequestComments": "ISR-COMMENT-POHER",
    "ReasonForTheRequestedProcedure": "RP-REASON-GLAUCOME",
    "TextString": "TEXT-STRING-MORLAIX",
    "FrameComments": "FRAME-COMMENT-ROSTRENEN",
    "PatientComments": "PATIENT-COMMENT-ANNE",
    "PatientBirthDateInAlternativeCalendar": "ALTCAL-1367",
    "DerivationDescription": "DERIVED-BY-OPERATOR-YANN",
    "ImageComments": "IMAGE-COMMENT-SOIZIC",
}
_DATES = {  # DA, TM, DT: unique values, none of them may survive either
    "DateOfLastCalibration": "20191103",
    "TimeOfLastCalibration": "071359",
    "InstanceCoercionDateTime": "20181204083012",
    "SeriesDate": "20170305",
    "InstanceCreationTime": "091723",
}


def _everything(ds: Dataset) -> tuple[Dataset, list[bytes]]:
    """``ds`` with every E.1-1 category the review found, at the top and nested in items."""
    secrets: list[str] = []

    def text_and_dates(item: Dataset, tag: str) -> None:
        for keyword, value in _TEXT.items():
            setattr(item, keyword, f"{value}-{tag}")
            secrets.append(f"{value}-{tag}")
        for keyword, value in _DATES.items():
            setattr(item, keyword, value)
            secrets.append(value)

    text_and_dates(ds, "TOP")
    ref = Dataset()  # an item that survives: the sweep must reach into it
    ref.ReferencedSOPClassUID = ds.SOPClassUID
    ref.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    text_and_dates(ref, "NESTED")
    ds.ReferencedImageSequence = Sequence([ref])
    context = Dataset()
    context.DateTime, context.Date, context.Time = "20160708091011", "20150607", "101112"
    context.TextValue = "CONTEXT-TEXT-ANNE"
    ds.AcquisitionContextSequence = Sequence([context])
    secrets += ["20160708091011", "20150607", "101112", "CONTEXT-TEXT-ANNE"]
    contributor = Dataset()
    contributor.ContributionDateTime = "20140506070809"
    contributor.ContributionDescription = "CONTRIBUTION-BY-YANN"
    contributor.InstitutionName = "CONTRIB-INSTITUTION-POHER"
    ds.ContributingEquipmentSequence = Sequence([contributor])
    secrets += ["20140506070809", "CONTRIBUTION-BY-YANN", "CONTRIB-INSTITUTION-POHER"]
    original = Dataset()
    original.ModifyingSystem = "MODIFIER-SYSTEM-RIS"
    original.SourceOfPreviousValues = "PREVIOUS-VALUES-HIS"
    ds.OriginalAttributesSequence = Sequence([original])
    secrets += ["MODIFIER-SYSTEM-RIS", "PREVIOUS-VALUES-HIS"]
    issuer = Dataset()
    issuer.LocalNamespaceEntityID = "ACCESSION-ISSUER-CHU"
    ds.IssuerOfAccessionNumberSequence = Sequence([issuer])
    physician = Dataset()
    physician.PersonAddress = "PHYSICIAN-ADDRESS-GOURIN"
    physician.PersonTelephoneNumbers = "0298765432"
    ds.ConsultingPhysicianIdentificationSequence = Sequence([physician])
    deeper = Dataset()  # Person Address / Telephone inside a surviving item, two levels down
    deeper.PersonAddress = "DEEP-ADDRESS-SCAER"
    deeper.PersonTelephoneNumbers = "0611223344"
    ref.ReferencedImageSequence = Sequence([deeper])
    secrets += ["ACCESSION-ISSUER-CHU", "PHYSICIAN-ADDRESS-GOURIN", "0298765432"]
    secrets += ["DEEP-ADDRESS-SCAER", "0611223344"]
    icon = Dataset()
    icon.Rows, icon.Columns = 2, 2
    icon.ImageComments = "ICON-COMMENT-KERGOAT"
    ds.IconImageSequence = Sequence([icon])
    secrets.append("ICON-COMMENT-KERGOAT")
    ds.add_new(0x60000022, "LO", "OVERLAY-DESCRIPTION-ANNE")
    ds.add_new(0x60004000, "LT", "OVERLAY-COMMENT-KERGOAT")
    ds.add_new(0x60023000, "OW", b"OVERLAY-DATA-SOIZIC")
    ds.add_new(0x50000022, "LO", "CURVE-DESCRIPTION-ANNE")
    ds.add_new(0x50003000, "OW", b"CURVE-DATA-KERGOAT")
    ds.DataSetTrailingPadding = b"PADDING-ANNE-KERGOAT"
    secrets += ["OVERLAY-DESCRIPTION-ANNE", "OVERLAY-COMMENT-KERGOAT", "OVERLAY-DATA-SOIZIC"]
    secrets += ["CURVE-DESCRIPTION-ANNE", "CURVE-DATA-KERGOAT", "PADDING-ANNE-KERGOAT"]
    for keyword, token in (
        ("DigitalSignaturesSequence", "SIGNATURE-BY-YANN"),
        ("MACParametersSequence", "MAC-BY-YANN"),
        ("EncryptedAttributesSequence", "ENCRYPTED-FOR-YANN"),
    ):
        item = Dataset()
        item.TextValue = token
        setattr(ds, keyword, Sequence([item]))
        secrets.append(token)
    ds.preamble = b"KERGOAT ANNE-SOIZIC 29-0517-7731".ljust(128, b" ")
    secrets.append("KERGOAT ANNE-SOIZIC")
    return ds, [s.encode() for s in secrets]


def test_every_annex_e_category_is_gone_from_the_bytes_at_any_depth() -> None:
    original, secrets = _everything(build_dataset(PATIENT, "R"))
    raw = encode(original)
    assert all(secret in raw for secret in secrets)  # they were all really there
    checked = validate(raw)
    assert isinstance(checked, ValidImage), checked

    result = _deid(checked.dataset)

    for out in (part10(result.dataset), encode(result.dataset)):
        assert [s for s in secrets if s in out] == []
        assert out[:128] == bytes(128)
    audit = "\n".join(result.actions).encode()
    assert [s for s in secrets if s in audit] == []
    ds = result.dataset
    assert ds.AcquisitionContextSequence == []  # Type 2 in the OP IOD: kept, no items
    for gone in ("IconImageSequence", "OriginalAttributesSequence", "DigitalSignaturesSequence"):
        assert gone not in ds
    assert not [e for e in ds if e.tag.group in (0x5000, 0x6000, 0x6002)]
    assert (ds.ContentDate, ds.ContentTime) == ("19000101", "000000")  # Type 1: dummies
    assert "curve/overlay groups (50xx, 60xx): 5 elements removed" in result.actions
    assert isinstance(validate(part10(ds)), ValidImage)


def test_identifying_values_walks_nested_sequences() -> None:
    original = _with_nested_identifiers(build_dataset(PATIENT, "R"))
    physician = Dataset()
    physician.PersonAddress = "3 PLACE DU MARCHE GOURIN"
    original.ConsultingPhysicianIdentificationSequence = Sequence([physician])
    found = identifying_values(original)
    assert found["ReferencedImageSequence[0].PersonName"] == PATIENT.name
    assert found["ConsultingPhysicianIdentificationSequence[0].PersonAddress"].endswith("GOURIN")
    assert found["PerformingPhysicianName"] == "LE BIHAN^YANN"
    # and so the byte scan catches a nested leak
    assert find_identifiers(encode(original), found) == list(found)


@pytest.mark.parametrize(
    ("keyword", "value", "code"),
    [
        ("BurnedInAnnotation", None, "burned-in-annotation-unknown"),
        ("BurnedInAnnotation", "", "burned-in-annotation-unknown"),
        ("BurnedInAnnotation", "MAYBE", "burned-in-annotation-unknown"),
        ("RecognizableVisualFeatures", "YES", "recognizable-visual-features"),
    ],
)
def test_what_the_pixels_may_show_fails_closed(keyword: str, value: str | None, code: str) -> None:
    ds = build_dataset(PATIENT, "R")
    if value is None:
        delattr(ds, keyword)
    else:
        setattr(ds, keyword, value)
    refusal = deidentify(ds, PSEUDONYM, SECRET)
    assert isinstance(refusal, Refusal)
    assert refusal.code == code
    assert not refusal.status.transient


def test_the_simulated_camera_says_no_burned_in_annotation() -> None:
    assert build_dataset(PATIENT, "R").BurnedInAnnotation == "NO"


@pytest.mark.parametrize("uid", ["1.2.826.0.1.3680043.2.\u00e9", "1.2.ABC.4", "1." + "2" * 70])
def test_an_invalid_uid_is_refused_never_raised(uid: str) -> None:
    ds = build_dataset(PATIENT, "R")
    with quiet_pydicom():  # pydicom would warn (the test runs warnings as errors)
        ds.SeriesInstanceUID = uid
    refusal = deidentify(ds, PSEUDONYM, SECRET)
    assert isinstance(refusal, Refusal)
    assert refusal.code == "uid-invalid"
    assert "(0020,000E)" in refusal.reason
    assert uid not in refusal.reason
    assert new_uid(uid, SECRET).startswith("2.25.")  # never raises either


def test_part10_always_writes_a_zero_preamble() -> None:
    ds = _deid(build_dataset(PATIENT, "R")).dataset
    ds.preamble = b"KERGOAT".ljust(128, b"!")
    out = part10(ds)
    assert out[:132] == bytes(128) + b"DICM"
    assert part10(ds) == out

"""The PS3.15 Annex E basic profile as data: which attribute gets which action (Table E.1-1).

The constant tables :mod:`drivers.dicom.deidentify` applies, named after the action codes of
DICOM PS3.15 Table E.1-1: :data:`X` (remove), :data:`Z` (empty, zero length), :data:`D` (dummy
value), plus the pseudonymised attributes, the UIDs kept (registered class UIDs, action U keeps
none of the others), the VR sweeps beyond the table, and :data:`SCANNED`, the attributes
:func:`drivers.dicom.deidentify.identifying_values` collects. Only the attributes of the table that
can occur in an Ophthalmic Photography 8 Bit Image (IOD in PS3.3 A.39) or its sequence items are
listed; the choices behind each table are in the docstring of :mod:`drivers.dicom.deidentify`.
"""

from __future__ import annotations

import re

__all__ = [
    "DATE_VRS",
    "EMPTIED_SEQUENCES",
    "KEEP_UID",
    "METHOD",
    "PROFILE_CODE",
    "PSEUDONYM",
    "REPEATING_GROUPS",
    "SCANNED",
    "TEXT_VRS",
    "TOP_LEVEL_DATES",
    "UID_SYNTAX",
    "D",
    "X",
    "Z",
]


def _words(text: str) -> tuple[str, ...]:
    """The attribute keywords of one action column (kept as text to stay readable)."""
    return tuple(text.split())


Z = _words(  # emptied (zero length): Type 2 in the OP IOD
    "PatientBirthDate PatientSex StudyDate StudyTime AccessionNumber StudyID "
    "ReferringPhysicianName ContentCreatorName"
)
#: removed (X) - Table E.1-1 rows that can occur in an OP object or its sequence items, plus the
#: whole Clinical Trial Subject / Study / Series modules (optional modules: removing them all
#: keeps the object conformant where the profile would put dummies)
X = _words(
    "AcquisitionComments AcquisitionDate AcquisitionDeviceProcessingDescription "
    "AcquisitionProtocolDescription AcquisitionProtocolName AcquisitionTime "
    "ActualHumanPerformersSequence AdditionalPatientHistory AdmissionID AdmittingDate "
    "AdmittingDiagnosesCodeSequence AdmittingDiagnosesDescription AdmittingTime Allergies "
    "AuthorObserverSequence BranchOfService CassetteID ClinicalTrialCoordinatingCenterName "
    "ClinicalTrialProtocolEthicsCommitteeApprovalNumber "
    "ClinicalTrialProtocolEthicsCommitteeName ClinicalTrialProtocolID ClinicalTrialProtocolName "
    "ClinicalTrialSeriesDescription ClinicalTrialSeriesID ClinicalTrialSiteID "
    "ClinicalTrialSiteName ClinicalTrialSponsorName ClinicalTrialSubjectID "
    "ClinicalTrialSubjectReadingID ClinicalTrialTimePointDescription ClinicalTrialTimePointID "
    "ClinicalTrialTimePointTypeCodeSequence CommentsOnThePerformedProcedureStep "
    "ConfidentialityConstraintOnPatientDataDescription ConsentForClinicalTrialUseSequence "
    "ConsultingPhysicianIdentificationSequence ConsultingPhysicianName "
    "ContentCreatorIdentificationCodeSequence ContentSequence ContributingEquipmentSequence "
    "ContributionDateTime ContributionDescription CountryOfResidence CurrentObserverTrial "
    "CurrentPatientLocation CustodialOrganizationSequence DataSetTrailingPadding "
    "DateOfLastCalibration DateOfLastDetectorCalibration DateOfSecondaryCapture "
    "DerivationDescription DetectorID DeviceDescription DeviceLabel DeviceSerialNumber "
    "DeviceUID DigitalSignaturesSequence DischargeDiagnosisDescription DistributionAddress "
    "DistributionName EncryptedAttributesSequence EndAcquisitionDateTime EthnicGroup "
    "ExpectedCompletionDateTime FillerOrderNumberImagingServiceRequest FrameComments GantryID "
    "GeneratorID HumanPerformerName HumanPerformerOrganization IconImageSequence "
    "IdentifyingComments ImageComments ImagePresentationComments ImagingServiceRequestComments "
    "Impressions InstanceCoercionDateTime InstanceCreationDate InstanceCreationTime "
    "InstitutionAddress InstitutionCodeSequence InstitutionName InstitutionalDepartmentName "
    "InstitutionalDepartmentTypeCodeSequence InsurancePlanIdentification "
    "IntendedRecipientsOfResultsIdentificationSequence InterpretationApproverSequence "
    "InterpretationAuthor InterpretationDiagnosisDescription InterpretationIDIssuer "
    "InterpretationRecorder InterpretationText InterpretationTranscriber "
    "IssueDateOfImagingServiceRequest IssuerOfAccessionNumberSequence IssuerOfAdmissionID "
    "IssuerOfAdmissionIDSequence IssuerOfPatientID IssuerOfPatientIDQualifiersSequence "
    "IssuerOfServiceEpisodeID IssuerOfServiceEpisodeIDSequence LastMenstrualDate "
    "LongDeviceDescription MAC MACParametersSequence MedicalAlerts MedicalRecordLocator "
    "MilitaryRank ModifiedAttributesSequence ModifiedImageDescription ModifyingDeviceID "
    "ModifyingSystem NameOfPhysiciansReadingStudy NamesOfIntendedRecipientsOfResults "
    "NonconformingModifiedAttributesSequence Occupation OperatorIdentificationSequence "
    "OperatorsName OrderCallbackPhoneNumber OrderCallbackTelecomInformation OrderEnteredBy "
    "OrderEntererLocation OriginalAttributesSequence OtherPatientIDs OtherPatientIDsSequence "
    "OtherPatientNames ParticipantSequence PatientAddress PatientAge "
    "PatientBirthDateInAlternativeCalendar PatientBirthName PatientBirthTime PatientComments "
    "PatientDeathDateInAlternativeCalendar PatientInstitutionResidence "
    "PatientInsurancePlanCodeSequence PatientMotherBirthName PatientPrimaryLanguageCodeSequence "
    "PatientPrimaryLanguageModifierCodeSequence PatientReligiousPreference PatientSexNeutered "
    "PatientSize PatientState PatientTelecomInformation PatientTelephoneNumbers "
    "PatientTransportArrangements PatientWeight PerformedLocation "
    "PerformedProcedureStepDescription PerformedProcedureStepEndDate "
    "PerformedProcedureStepEndDateTime PerformedProcedureStepEndTime PerformedProcedureStepID "
    "PerformedProcedureStepStartDate PerformedProcedureStepStartDateTime "
    "PerformedProcedureStepStartTime PerformedStationAETitle "
    "PerformedStationGeographicLocationCodeSequence PerformedStationName "
    "PerformedStationNameCodeSequence PerformingPhysicianIdentificationSequence "
    "PerformingPhysicianName PersonAddress PersonIdentificationCodeSequence PersonName "
    "PersonTelecomInformation PersonTelephoneNumbers PhysicianApprovingInterpretation "
    "PhysiciansOfRecord PhysiciansOfRecordIdentificationSequence "
    "PhysiciansReadingStudyIdentificationSequence PlacerOrderNumberImagingServiceRequest "
    "PlateID PreMedication PregnancyStatus ProtocolName ReasonForOmissionDescription "
    "ReasonForStudy ReasonForTheImagingServiceRequest ReasonForTheRequestedProcedure "
    "ReasonForVisit ReasonForVisitCodeSequence ReferencedDigitalSignatureSequence "
    "ReferencedPatientAliasSequence ReferencedPatientPhotoSequence ReferencedPatientSequence "
    "ReferencedSOPInstanceMACSequence ReferencedStudySequence ReferringPhysicianAddress "
    "ReferringPhysicianIdentificationSequence ReferringPhysicianTelephoneNumbers "
    "RegionOfResidence RequestAttributesSequence RequestedContrastAgent "
    "RequestedProcedureComments RequestedProcedureDescription RequestedProcedureID "
    "RequestedProcedureLocation RequestingPhysician RequestingService ResponsibleOrganization "
    "ResponsiblePerson ResultsComments ResultsDistributionListSequence ResultsIDIssuer "
    "ReviewerName ScheduledHumanPerformersSequence ScheduledPatientInstitutionResidence "
    "ScheduledPerformingPhysicianIdentificationSequence ScheduledPerformingPhysicianName "
    "ScheduledProcedureStepDescription ScheduledProcedureStepEndDate "
    "ScheduledProcedureStepEndTime ScheduledProcedureStepID ScheduledProcedureStepLocation "
    "ScheduledProcedureStepModificationDateTime ScheduledProcedureStepStartDate "
    "ScheduledProcedureStepStartDateTime ScheduledProcedureStepStartTime "
    "ScheduledStationAETitle ScheduledStationGeographicLocationCodeSequence "
    "ScheduledStationName ScheduledStationNameCodeSequence ScheduledStudyLocation "
    "ScheduledStudyLocationAETitle SeriesDate SeriesDescription SeriesTime "
    "ServiceEpisodeDescription ServiceEpisodeID SmokingStatus SourceOfPreviousValues "
    "SpecialNeeds StationName StudyComments StudyDescription StudyIDIssuer TextComments "
    "TextString TextValue TimeOfLastCalibration TimeOfLastDetectorCalibration "
    "TimezoneOffsetFromUTC TopicAuthor TopicKeywords TopicSubject TopicTitle "
    "VerifyingObserverIdentificationCodeSequence VerifyingObserverName "
    "VerifyingObserverSequence VerifyingOrganization VisitComments"
)
#: Type 2 sequences of the OP IOD kept with zero items (Z): Acquisition Context (PS3.3 C.7.6.14)
EMPTIED_SEQUENCES = ("AcquisitionContextSequence",)
D = {"ContentDate": "19000101", "ContentTime": "000000", "AcquisitionDateTime": "19000101000000"}
PSEUDONYM = ("PatientName", "PatientID")
KEEP_UID = frozenset({"SOPClassUID", "ReferencedSOPClassUID", "MediaStorageSOPClassUID"})
PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
METHOD = "PS3.15 E.1-1 basic profile; santebus-edge keyed UIDs; no options"
#: VRs removed wherever they occur (beyond the table): dates, times and ages (no "Retain
#: Longitudinal Temporal Information" option), free text (LT, ST, UT, UC: comments an operator
#: may have typed a name into), and UN (a value we cannot read, we cannot judge)
DATE_VRS = frozenset({"DA", "DT", "TM", "AS"})
TEXT_VRS = frozenset({"LT", "ST", "UT", "UC"})
#: the dates and times kept at the top level: the dummies (D) and the emptied Type 2 ones (Z)
TOP_LEVEL_DATES = frozenset({*D, "StudyDate", "StudyTime", "PatientBirthDate"})
#: curve (50xx) and overlay (60xx) repeating groups: Curve Data, Overlay Data, Overlay
#: Comments... are X in Table E.1-1; the whole groups go
REPEATING_GROUPS = ((0x5000, 0x50FF), (0x6000, 0x60FF))
#: a UID is digits and dots, at most 64 characters (PS3.5 9.1); leading zeros in a component,
#: a common camera bug, are tolerated: the value is replaced anyway
UID_SYNTAX = re.compile(r"[0-9]+(?:\.[0-9]+)*")
#: labels of :func:`drivers.dicom.deidentify.identifying_values`, the attributes worth scanning
#: output bytes for (at any depth; every person name (PN) is scanned as well)
SCANNED = frozenset(
    {
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "OtherPatientIDs",
        "OtherPatientNames",
        "PatientAddress",
        "PatientTelephoneNumbers",
        "PersonAddress",
        "PersonTelephoneNumbers",
        "AccessionNumber",
        "StudyID",
        "AdmissionID",
        "ServiceEpisodeID",
        "MedicalRecordLocator",
        "ClinicalTrialSubjectID",
        "ClinicalTrialSubjectReadingID",
        "RequestedProcedureID",
        "PlacerOrderNumberImagingServiceRequest",
        "FillerOrderNumberImagingServiceRequest",
        "PerformedProcedureStepID",
        "ScheduledProcedureStepID",
        "InstitutionName",
        "InstitutionAddress",
        "ReferringPhysicianName",
        "OperatorsName",
        "PerformingPhysicianName",
        "DeviceSerialNumber",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "FrameOfReferenceUID",
        "ReferencedSOPInstanceUID",
    }
)

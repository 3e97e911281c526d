"""A simulated non-mydriatic retinograph: builds DICOM OP images and sends them by C-STORE.

:func:`build_dataset` makes an Ophthalmic Photography 8 Bit Image (PS3.3 A.39: SOP class
1.2.840.10008.5.1.4.1.1.77.1.5.1, Image Laterality (0020,0062), RGB with Planar Configuration
0, one frame) from a pixel array and a patient, with the identifying attributes a real camera
writes (name, ID, birth date, institution, operator, accession number, device serial number, a
private tag holding the name) so de-identification has something to remove, and Burned In
Annotation (0028,0301) = NO explicitly (the gateway refuses an object that does not say so: it
cannot confirm there is no text in the pixels). :class:`Retinograph`
is a pynetdicom Storage SCU: :meth:`Retinograph.send` returns the C-STORE status the SCP
answered (PS3.4 B.2.3) with its Error Comment, or why no status could be obtained.

Pixels come from a ``PixelSource`` ``(laterality, rows, columns) -> uint8 (rows, columns, 3)``;
:func:`placeholder_fundus` (an orange disc with an optic disc on the nasal side) stands in until
the procedural fundus generator (``simulators.fundus.generate``) is plugged in.

Faults (:class:`Fault`) and what a correct gateway answers (``Fault.expected_status``): a
missing or invalid laterality tag and missing pixel data are 0xA900, truncated pixel data
0xC000, a truncated file (folder only: :func:`write_file`) 0xC000, a foreign SOP class (a CT
image) is refused at association negotiation (no status: the SCU has no accepted context) or,
dropped in a folder, 0xA900; a swapped laterality is a valid object (only the image shows it).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid
from pynetdicom import AE
from pynetdicom.association import Association

from drivers.dicom import OP_8BIT_SOP_CLASS

__all__ = [
    "CT_IMAGE_STORAGE",
    "Fault",
    "Patient",
    "PixelSource",
    "Retinograph",
    "SendResult",
    "build_dataset",
    "encode",
    "placeholder_fundus",
    "write_file",
]

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
PixelSource = Callable[[str, int, int], NDArray[np.uint8]]

logging.getLogger("pynetdicom").setLevel(logging.WARNING)


class Fault(StrEnum):
    NONE = "none"
    LATERALITY_MISSING = "laterality-missing"
    LATERALITY_INVALID = "laterality-invalid"
    LATERALITY_SWAPPED = "laterality-swapped"
    TRUNCATED_PIXELS = "truncated-pixels"
    NO_PIXEL_DATA = "no-pixel-data"
    FOREIGN_SOP_CLASS = "foreign-sop-class"
    TRUNCATED_FILE = "truncated-file"

    @property
    def expected_status(self) -> int | None:
        """The C-STORE status a correct SCP answers (None: refused at negotiation)."""
        return _EXPECTED[self]


_EXPECTED: dict[Fault, int | None] = {
    Fault.NONE: 0x0000,
    Fault.LATERALITY_SWAPPED: 0x0000,
    Fault.LATERALITY_MISSING: 0xA900,
    Fault.LATERALITY_INVALID: 0xA900,
    Fault.NO_PIXEL_DATA: 0xA900,
    Fault.TRUNCATED_PIXELS: 0xC000,
    Fault.TRUNCATED_FILE: 0xC000,
    Fault.FOREIGN_SOP_CLASS: None,
}


@dataclass(frozen=True, slots=True)
class Patient:
    """What the camera's worklist or its operator typed: all of it identifying."""

    name: str = "MARTINEAU^ELODIE^ROSE"
    patient_id: str = "PID-4471-0932"
    birth_date: str = "19580412"
    sex: str = "F"


def placeholder_fundus(laterality: str, rows: int, columns: int) -> NDArray[np.uint8]:
    """An orange-red disc on black with a pale optic disc on the nasal side (right for R)."""
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float32)
    cy, cx, radius = rows / 2, columns / 2, 0.46 * min(rows, columns)
    r = np.hypot(y - cy, x - cx) / radius
    field = np.clip(1.0 - r**4, 0.0, 1.0) * (r <= 1.0)
    img = np.zeros((rows, columns, 3), np.float32)
    img[..., 0], img[..., 1], img[..., 2] = 200 * field, 80 * field, 30 * field
    dx = 0.3 * radius if laterality == "R" else -0.3 * radius
    disc = np.hypot(y - cy, x - (cx + dx)) <= 0.08 * radius
    img[disc] = (250, 230, 170)
    return np.clip(img, 0, 255).astype(np.uint8)


def build_dataset(
    patient: Patient,
    laterality: str,
    *,
    pixels: PixelSource = placeholder_fundus,
    rows: int = 256,
    columns: int = 256,
    fault: Fault = Fault.NONE,
    study_uid: str | None = None,
    series_uid: str | None = None,
    jpeg: bool = False,
) -> Dataset:
    """One OP 8-bit photograph of ``laterality`` (R or L), with ``fault`` applied."""
    array = np.ascontiguousarray(pixels(laterality, rows, columns), dtype=np.uint8)
    if array.shape != (rows, columns, 3):
        raise ValueError(f"pixel source gave {array.shape}, expected {(rows, columns, 3)}")
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE if fault is Fault.FOREIGN_SOP_CLASS else OP_8BIT_SOP_CLASS
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.Modality = "CT" if fault is Fault.FOREIGN_SOP_CLASS else "OP"
    _identify(ds, patient)
    eye = {"R": "L", "L": "R"}.get(laterality, laterality)
    if fault is Fault.LATERALITY_INVALID:
        ds.ImageLaterality = "X"
    elif fault is not Fault.LATERALITY_MISSING:
        ds.ImageLaterality = eye if fault is Fault.LATERALITY_SWAPPED else laterality
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, 3
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PlanarConfiguration, ds.NumberOfFrames = 0, 1
    ds.BurnedInAnnotation = "NO"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if jpeg:
        ds.PhotometricInterpretation = "YBR_FULL_422"
        ds.LossyImageCompression = "01"
        ds.PixelData = encapsulate([_jpeg(array)])
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    else:
        ds.PhotometricInterpretation = "RGB"
        ds.PixelData = array.tobytes()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if fault is Fault.TRUNCATED_PIXELS:
        ds.PixelData = ds.PixelData[: len(ds.PixelData) * 2 // 3]
    elif fault is Fault.NO_PIXEL_DATA:
        del ds.PixelData
    return ds


def _identify(ds: Dataset, patient: Patient) -> None:
    """What a real camera writes about the patient, the site and itself."""
    ds.PatientName, ds.PatientID = patient.name, patient.patient_id
    ds.PatientBirthDate, ds.PatientSex = patient.birth_date, patient.sex
    ds.OtherPatientIDs = f"NIR-{patient.patient_id[::-1]}"
    ds.StudyDate = ds.ContentDate = "20260514"
    ds.StudyTime = ds.ContentTime = "101502"
    ds.AcquisitionDateTime = "20260514101502"
    ds.AccessionNumber, ds.StudyID = "ACC-88231", "ST-5531"
    ds.ReferringPhysicianName = "VASSEUR^PAUL"
    ds.OperatorsName = "LEGRAND^NADIA"
    ds.InstitutionName = "CPTS DU HAUT-PAYS"
    ds.Manufacturer, ds.ManufacturerModelName = "santebus-sim", "NM-1"
    ds.DeviceSerialNumber = "SN-RET-0042"
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    block = ds.private_block(0x0009, "SANTEBUS SIM", create=True)
    block.add_new(0x01, "LO", patient.name.replace("^", " "))


def encode(ds: Dataset) -> bytes:
    """The DICOM Part-10 file of ``ds`` (preamble, file meta, dataset)."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def write_file(ds: Dataset, path: Path, *, truncate: bool = False) -> Path:
    """Write ``ds`` as ``path`` the way a camera exports it: to ``.part``, then a rename.

    ``truncate`` (:attr:`Fault.TRUNCATED_FILE`) keeps only the first 60 % of the bytes.
    """
    data = encode(ds)
    if truncate:
        data = data[: len(data) * 3 // 5]
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    part.replace(path)
    return path


def _jpeg(array: NDArray[np.uint8]) -> bytes:
    from PIL import Image  # Pillow comes with matplotlib; only the JPEG variant needs it

    buf = io.BytesIO()
    Image.fromarray(array, "RGB").save(buf, format="JPEG", quality=92, subsampling=1)
    return buf.getvalue()


@dataclass(frozen=True, slots=True)
class SendResult:
    """The C-STORE outcome at the SCU: ``status`` is None when none was received."""

    status: int | None
    error_comment: str = ""
    problem: str = ""

    @property
    def accepted(self) -> bool:
        return self.status == 0x0000


class Retinograph:
    """A Storage SCU with a camera's AE title; one association per :meth:`send` (blocking).

    pynetdicom blocks: from asyncio code call it through ``asyncio.to_thread``, or the SCP's
    handler, waiting for the same loop, could never run.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        called_ae: str = "SANTEBUS",
        calling_ae: str = "RETINO1",
        timeout_s: float = 10.0,
    ) -> None:
        self.host, self.port = host, port
        self.called_ae, self.calling_ae = called_ae, calling_ae
        self.timeout_s = timeout_s

    def send(self, *datasets: Dataset) -> list[SendResult]:
        """C-STORE each dataset in one association; one result per dataset."""
        ae = self._ae()
        for ds in datasets:
            ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
        assoc = ae.associate(self.host, self.port, ae_title=self.called_ae)
        if not assoc.is_established:
            why = "rejected" if assoc.is_rejected else "aborted or unreachable"
            return [SendResult(None, problem=f"association {why}") for _ in datasets]
        try:
            return [self._store(assoc, ds) for ds in datasets]
        finally:
            assoc.release()

    def echo(self) -> int | None:
        """C-ECHO (Verification): the status, or None if no association."""
        ae = self._ae()
        ae.add_requested_context("1.2.840.10008.1.1")
        assoc = ae.associate(self.host, self.port, ae_title=self.called_ae)
        if not assoc.is_established:
            return None
        try:
            rsp = assoc.send_c_echo()
            return int(rsp.Status) if "Status" in rsp else None
        finally:
            assoc.release()

    def _ae(self) -> AE:
        ae = AE(ae_title=self.calling_ae)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout_s
        return ae

    @staticmethod
    def _store(assoc: Association, ds: Dataset) -> SendResult:
        try:
            rsp = assoc.send_c_store(ds)
        except ValueError as exc:  # no accepted presentation context for this SOP class
            return SendResult(None, problem=f"not sent: {exc}")
        if "Status" not in rsp:
            return SendResult(None, problem="no response (timeout or abort)")
        return SendResult(int(rsp.Status), str(rsp.get("ErrorComment", "")))

"""DICOM reception of retinal photographs: validation, de-identification, C-STORE SCP, folder.

The shared vocabulary of the package lives here: the C-STORE statuses the gateway answers with
(DICOM PS3.4 Annex B.2.3, Storage Service Class statuses, and PS3.7 Annex C for the general
ones), the :class:`Verdict` an object handler returns, and the handler's type.

Both entry points hand every received object, as the bytes of a DICOM Part-10 file, to the same
asynchronous handler ``on_object(raw, source) -> Verdict``:

* :mod:`drivers.dicom.scp` - the one pynetdicom adapter (a C-STORE SCP; ``source`` is the
  calling AE title); loaded lazily, so the pure parts need no pynetdicom;
* :mod:`drivers.dicom.folder` - a polling folder watcher (``source`` is ``folder:<name>``).

The pure parts are :mod:`drivers.dicom.validate` (is this an Ophthalmic Photography 8 Bit Image
we can decode?) and :mod:`drivers.dicom.deidentify` (PS3.15 Annex E basic profile). The package
knows nothing of visits, the outbox or MQTT: binding an image to a visit is the daemon's job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "OP_8BIT_SOP_CLASS",
    "ObjectHandler",
    "Status",
    "Verdict",
]

#: Ophthalmic Photography 8 Bit Image Storage (PS3.4 Annex B.5; IOD in PS3.3 A.39).
OP_8BIT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.5.1"


class Status(IntEnum):
    """The C-STORE response statuses the gateway uses (PS3.4 B.2.3, PS3.7 C)."""

    SUCCESS = 0x0000
    #: Failure, Refused: Out of Resources (A7xx): storage full or too slow; the SCU may retry.
    OUT_OF_RESOURCES = 0xA700
    #: Error: Data Set does not match SOP Class (A9xx): a required attribute missing or wrong.
    DATASET_MISMATCH = 0xA900
    #: Error: Cannot understand (Cxxx): the bytes do not parse or the pixels do not decode.
    CANNOT_UNDERSTAND = 0xC000
    #: Failure: Processing failure (0110, PS3.7 C.4.2): the gateway itself failed.
    PROCESSING_FAILURE = 0x0110
    #: Failure: Refused: Not Authorized (0124, PS3.7 Annex C.5, failure statuses): the gateway
    #: will not take the object now (no visit open at the camera's station). Not transient:
    #: an automatic retry could bind the photograph to the next patient's visit.
    NOT_AUTHORIZED = 0x0124

    @property
    def transient(self) -> bool:
        """True when sending the same object again later may succeed."""
        return self in (Status.OUT_OF_RESOURCES, Status.PROCESSING_FAILURE)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the gateway made of one received object.

    ``reason`` is for people (the SCU's Error Comment, a ``.reason.txt``, an event); it names
    tags and codes, never an identifying value. ``code`` is a short stable machine code
    (``"laterality-missing"``, ``"stored"``...).
    """

    status: Status
    code: str
    reason: str = ""

    @property
    def accepted(self) -> bool:
        return self.status is Status.SUCCESS

    @classmethod
    def stored(cls, reason: str = "") -> Verdict:
        return cls(Status.SUCCESS, "stored", reason)


#: ``await on_object(raw_part10_bytes, source)``: validate, de-identify, store; never raises on
#: a bad object (a refusal is a :class:`Verdict`), may raise on a gateway fault.
ObjectHandler = Callable[[bytes, str], Awaitable[Verdict]]

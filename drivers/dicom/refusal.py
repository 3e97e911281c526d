"""Why an object is refused: the :class:`Refusal` every DICOM check returns.

A refusal carries a stable ``code``, a reason naming the tag (never a patient's value) and the
C-STORE failure status to answer with (PS3.4 B.2.3): ``0xA900`` when the data set does not match
the SOP class, ``0xC000`` when it cannot be understood.

It has its own module because :mod:`drivers.dicom.validate`, the pixel checks it calls
(:mod:`drivers.dicom.pixels`) and :mod:`drivers.dicom.deidentify` all return it: kept in
``validate``, ``validate`` and ``pixels`` would import each other. ``validate`` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.uid import UID

from drivers.dicom import Status, Verdict

__all__ = ["Refusal", "uid_name"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an object is refused: a stable code, a reason naming the tag, the C-STORE status."""

    code: str
    reason: str
    status: Status = Status.DATASET_MISMATCH

    def verdict(self) -> Verdict:
        return Verdict(self.status, self.code, self.reason)


def uid_name(uid: str) -> str:
    """A UID as a reason names it: its registered name and the UID, or the bare UID."""
    u = UID(str(uid))
    return f"{u.name} ({u})" if u.name != str(u) else str(u)

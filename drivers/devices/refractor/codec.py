"""Pure codec for autorefractor / keratometer result blocks (modelled on Nidek's RS-232C output).

What is taken from public descriptions of Nidek's output (cited in docs/refraction.md):

* a text block opened by SOH and closed by EOT, one data item per line, each line ended by
  ``ETB CR`` (Nidek LM-1000 interface manual, "Format of each data");
* an identification line ``ID<maker>/<model>`` and a date line ``DA``;
* sphere and cylinder as a polarity sign and four digits with a fixed decimal point
  (``-02.75``; the RT-5100 capture shows a space for the leading zero, ``- 2.75``, which is
  accepted too), the axis as a three-digit integer, and the objective (autorefraction)
  representative value of each eye on a line tagged ``OR`` / ``OL``: ``OR- 2.75- 0.50175``;
* the pupillary distance as ``PD64.0``.

Our assumptions (implemented here and by the simulator alike), since the public material does
not fix them: the lines and their order below, a confidence digit after each refraction value,
the keratometry lines, and a checksum. A block is ``SOH <lines> EOT <BCC>``, the BCC being the
XOR of everything after SOH up to and including EOT as two upper-case hex digits (as the CT-80
codec). Lines, each ``<tag><payload> ETB CR``::

    IDSIM/ARK-1                  maker/model (1-24 printable chars)
    NO0042                       exam number, 4 digits (the ACK names it)
    DA2026/11/23  TM09:41:07     date and time, device local time (spaces pad like zeros)
    PI0000000000042              patient id as keyed on the device, 0-13 chars, optional
    VD12.00                      vertex distance, mm (the refraction is at this spectacle plane)
    R1-02.75-00.50175 8          right eye reading 1..9: sphere, cylinder, axis, confidence 0-9
    OR-02.75-00.50175 9          right eye representative value (same layout)
    KR107.85 43.00178            right eye K1 (flat meridian): radius mm, power D, axis deg
    KR207.70 43.75088            right eye K2 (steep meridian)
    L1.. OL.. KL1.. KL2..        the same for the left eye
    PD64.0                       pupillary distance, mm, optional

Cylinder is written in the minus-cylinder convention; the codec does not check ranges (a
plausible-looking ``+35.00`` parses and is the daemon's validation's to quarantine), only the
layout. An eye with no ``O`` line was not measured (no refraction); no ``K`` line, no
keratometry.

``decode(buf) -> (record | None, consumed)`` never does I/O; malformed input raises
:class:`~drivers.errors.FrameError` naming the line, the field and the byte offset, with the
number of bytes to drop so a stream always resynchronises on the next SOH.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from drivers.codec.framing import bcc_hex
from drivers.errors import FrameError

SOH = 0x01
EOT = 0x04
ETB = 0x17
CR = 0x0D
LINE_END = bytes([ETB, CR])
MAX_FRAME = 1024  # a full block is about 300 bytes
MAX_READINGS = 9
#: a representative value whose confidence digit is below this is marked unreliable
RELIABLE_FROM = 5

_DIOPTRE = re.compile(r"[+-][0-9 ][0-9]\.[0-9]{2}")  # -02.75, - 2.75, +10.00
_AXIS = re.compile(r"[0-9 ]{2}[0-9]")  # 005, "  5", 180
_RADIUS = re.compile(r"[0-9 ][0-9]\.[0-9]{2}")  # 07.85
_TEXT = re.compile(r"[ -~]*")


@dataclass(frozen=True, slots=True)
class Refraction:
    """Sphere and cylinder in dioptres (minus cylinder), axis in degrees, confidence 0-9."""

    sphere: float
    cylinder: float
    axis: int
    confidence: int


@dataclass(frozen=True, slots=True)
class Keratometry:
    """One principal meridian: radius of curvature (mm), power (D), axis (degrees)."""

    radius: float
    power: float
    axis: int


@dataclass(frozen=True, slots=True)
class EyeResult:
    """One eye: the single readings, the device's representative value, K1 (flat) and K2."""

    readings: tuple[Refraction, ...] = ()
    representative: Refraction | None = None
    k1: Keratometry | None = None
    k2: Keratometry | None = None

    @property
    def measured(self) -> bool:
        return self.representative is not None or self.k1 is not None or self.k2 is not None


@dataclass(frozen=True, slots=True)
class RefractorRecord:
    """A decoded block. ``patient_id`` is opaque and must never be logged."""

    model: str
    exam_no: str
    time: datetime
    vertex_mm: float
    right: EyeResult
    left: EyeResult
    patient_id: str = ""
    pd_mm: float | None = None

    @property
    def body(self) -> bytes:
        return _encode_body(self)

    @property
    def key(self) -> str:
        """Identity of the record: equal for a retransmission, distinct for another exam."""
        return hashlib.sha256(self.body).hexdigest()[:32]


# --------------------------------------------------------------------------- encoding


def _dioptre(value: float) -> str:
    if not -99.99 <= value <= 99.99:
        raise ValueError(f"{value} D does not fit the field")
    return f"{'-' if value < 0 else '+'}{abs(value):05.2f}"


def _refraction(r: Refraction) -> str:
    if not 0 <= r.axis <= 999 or not 0 <= r.confidence <= 9:
        raise ValueError(f"axis {r.axis} or confidence {r.confidence} does not fit the field")
    return f"{_dioptre(r.sphere)}{_dioptre(r.cylinder)}{r.axis:03d} {r.confidence}"


def _keratometry(k: Keratometry) -> str:
    if not 0 <= k.radius <= 99.99 or not 0 <= k.power <= 99.99 or not 0 <= k.axis <= 999:
        raise ValueError(f"{k} does not fit the fields")
    return f"{k.radius:05.2f} {k.power:05.2f}{k.axis:03d}"


def _eye_lines(side: str, eye: EyeResult) -> list[str]:
    if len(eye.readings) > MAX_READINGS:
        raise ValueError(f"at most {MAX_READINGS} readings per eye")
    lines = [f"{side}{n}{_refraction(r)}" for n, r in enumerate(eye.readings, start=1)]
    if eye.representative is not None:
        lines.append(f"O{side}{_refraction(eye.representative)}")
    for n, k in ((1, eye.k1), (2, eye.k2)):
        if k is not None:
            lines.append(f"K{side}{n}{_keratometry(k)}")
    return lines


def _encode_body(record: RefractorRecord) -> bytes:
    if not re.fullmatch(r"[0-9]{4}", record.exam_no):
        raise ValueError(f"exam number {record.exam_no!r} is not 4 digits")
    lines = [
        f"ID{record.model}",
        f"NO{record.exam_no}",
        f"DA{record.time:%Y/%m/%d}",
        f"TM{record.time:%H:%M:%S}",
    ]
    if record.patient_id:
        lines.append(f"PI{record.patient_id}")
    lines.append(f"VD{record.vertex_mm:05.2f}")
    lines += _eye_lines("R", record.right) + _eye_lines("L", record.left)
    if record.pd_mm is not None:
        lines.append(f"PD{record.pd_mm:04.1f}")
    for line in lines:
        if not _TEXT.fullmatch(line):
            raise ValueError(f"line {line!r} is not printable ASCII")
    return b"".join(line.encode("ascii") + LINE_END for line in lines)


def encode(record: RefractorRecord) -> bytes:
    """Frame a record: ``SOH lines EOT BCC``."""
    body = _encode_body(record)
    return bytes([SOH]) + body + bytes([EOT]) + bcc_hex(body + bytes([EOT]))


# --------------------------------------------------------------------------- decoding


#: the line tags a reason may name (anything else is "unknown tag": it is line content)
_KNOWN_TAG = re.compile(r"ID|NO|DA|TM|PI|VD|PD|OR|OL|KR|KL|[RL][1-9]")


class _Line:
    """One line of a block being parsed: where it is, for error messages."""

    def __init__(self, number: int, text: str, offset: int) -> None:
        self.number, self.text, self.offset = number, text, offset

    @property
    def tag(self) -> str:
        """The line's tag when it is a known one, else ``unknown tag`` (never line content)."""
        tag = self.text[:2]
        return tag if _KNOWN_TAG.fullmatch(tag) else "unknown tag"

    def fail(self, field: str, start: int, expected: str, width: int | None = None) -> FrameError:
        """A FrameError naming the line, its tag, the field, its byte offset and length.

        Never the content: a line may be the patient id (``PI``) the device was keyed with, and
        the reason is logged (driver.py). ``width``: the field's length (default: the rest of
        the line).
        """
        rest = max(0, len(self.text) - start)
        length = rest if width is None else min(width, rest)
        return FrameError(
            f"line {self.number} ({self.tag}) {field}: {length} chars at byte "
            f"{self.offset + start} are not {expected}",
            MAX_FRAME,
            self.offset + start,
        )

    def field(self, field: str, start: int, width: int, pattern: re.Pattern[str], what: str) -> str:
        value = self.text[start : start + width]
        if len(value) != width or not pattern.fullmatch(value):
            raise self.fail(field, start, what, width)
        return value


def _number(text: str) -> float:
    return float(text.replace(" ", "0"))


def _parse_refraction(line: _Line, start: int, what: str) -> Refraction:
    if len(line.text) != start + 17:
        raise line.fail(what, start, "sphere, cylinder, axis and confidence (17 chars)")
    sphere = line.field(f"{what} sphere", start, 6, _DIOPTRE, "a signed dioptre like -02.75")
    cyl = line.field(f"{what} cylinder", start + 6, 6, _DIOPTRE, "a signed dioptre like -00.50")
    axis = line.field(f"{what} axis", start + 12, 3, _AXIS, "a 3-digit axis like 175")
    conf = line.field(f"{what} confidence", start + 15, 2, re.compile(r" [0-9]"), "' 0'..' 9'")
    return Refraction(_number(sphere), _number(cyl), int(axis.replace(" ", "0")), int(conf))


def _parse_keratometry(line: _Line) -> Keratometry:
    name = f"K{line.text[2]}"  # K1 or K2: checked by the caller
    if len(line.text) != 3 + 14:
        raise line.fail(name, 3, "radius, power and axis (14 chars)")
    radius = line.field(f"{name} radius", 3, 5, _RADIUS, "a radius in mm like 07.85")
    power = line.field(f"{name} power", 8, 6, re.compile(r" [0-9 ][0-9]\.[0-9]{2}"), "' 43.00'")
    axis = line.field(f"{name} axis", 14, 3, _AXIS, "a 3-digit axis like 178")
    return Keratometry(_number(radius), _number(power), int(axis.replace(" ", "0")))


def _split(body: bytes) -> list[_Line]:
    lines: list[_Line] = []
    pos = 0
    while pos < len(body):
        end = body.find(LINE_END, pos)
        if end == -1:
            raise FrameError("last line not ended by ETB CR", MAX_FRAME, 1 + pos)
        raw = body[pos:end]
        for i, byte in enumerate(raw):
            if not 32 <= byte < 127:
                raise FrameError(f"line {len(lines) + 1}: control byte", MAX_FRAME, 1 + pos + i)
        lines.append(_Line(len(lines) + 1, raw.decode("ascii"), 1 + pos))  # +1: after SOH
        pos = end + len(LINE_END)
    return lines


def _time(date_line: _Line | None, time_line: _Line | None) -> datetime:
    if date_line is None or time_line is None:
        raise FrameError("DA or TM line missing", MAX_FRAME, 1)
    date = date_line.text[2:].replace(" ", "0")
    try:
        day = datetime.strptime(date, "%Y/%m/%d").date()
    except ValueError:
        raise date_line.fail("date", 2, "a date like 2026/11/23") from None
    try:
        at = datetime.strptime(time_line.text[2:].replace(" ", "0"), "%H:%M:%S").time()
    except ValueError:
        raise time_line.fail("time", 2, "a time like 09:41:07") from None
    return datetime.combine(day, at)


class _Eye:
    """An eye's lines as they are parsed."""

    def __init__(self) -> None:
        self.readings: list[Refraction] = []
        self.representative: Refraction | None = None
        self.k: dict[str, Keratometry] = {}

    def result(self) -> EyeResult:
        return EyeResult(
            tuple(self.readings), self.representative, self.k.get("1"), self.k.get("2")
        )


def _header(lines: dict[str, _Line], tag: str, pattern: str, what: str) -> str | None:
    """The payload of a header line, checked whole against ``pattern``; None when absent."""
    line = lines.get(tag)
    if line is None:
        return None
    if not re.fullmatch(pattern, line.text[2:]):
        raise line.fail(what, 2, f"like {pattern!r}")
    return line.text[2:]


def _parse_body(body: bytes) -> RefractorRecord:
    header: dict[str, _Line] = {}
    eyes = {"R": _Eye(), "L": _Eye()}
    for line in _split(body):
        tag = line.text[:2]
        if tag in ("ID", "NO", "DA", "TM", "PI", "VD", "PD"):
            if tag in header:
                raise line.fail(tag, 0, "a line seen once per block")
            header[tag] = line
        elif tag[:1] in ("R", "L") and tag[1:].isdigit() and tag[1] != "0":
            eye = eyes[tag[0]]
            if int(tag[1]) != len(eye.readings) + 1:
                raise line.fail("reading number", 1, f"reading {len(eye.readings) + 1} in order")
            eye.readings.append(_parse_refraction(line, 2, f"reading {tag[1]}"))
        elif tag in ("OR", "OL"):
            eyes[tag[1]].representative = _parse_refraction(line, 2, "representative")
        elif tag in ("KR", "KL") and line.text[2:3] in ("1", "2"):
            eyes[tag[1]].k[line.text[2]] = _parse_keratometry(line)
        else:
            raise line.fail("tag", 0, "a known line tag")
    for tag in ("ID", "NO", "DA", "TM", "VD"):
        if tag not in header:
            raise FrameError(f"{tag} line missing", MAX_FRAME, 1)
    model = _header(header, "ID", r"[ -~]{1,24}", "model") or ""
    exam_no = _header(header, "NO", r"[0-9]{4}", "exam number") or ""
    vertex = _header(header, "VD", r"[0-9 ][0-9]\.[0-9]{2}", "vertex distance (mm)") or ""
    pd = _header(header, "PD", r"[0-9 ][0-9]\.[0-9]", "pupillary distance (mm)")
    patient = _header(header, "PI", r"[ -~]{0,13}", "patient id") or ""
    return RefractorRecord(
        model=model,
        exam_no=exam_no,
        time=_time(header.get("DA"), header.get("TM")),
        vertex_mm=_number(vertex),
        right=eyes["R"].result(),
        left=eyes["L"].result(),
        patient_id=patient,
        pd_mm=_number(pd) if pd is not None else None,
    )


def decode(buf: bytes) -> tuple[RefractorRecord | None, int]:
    """Decode the first block of ``buf``.

    Returns ``(record, consumed)`` for a complete block and ``(None, 0)`` when more bytes are
    needed. Raises :class:`FrameError` (``consumed`` >= 1) for noise before an SOH, a block cut
    short by a new SOH, a block with no EOT within :data:`MAX_FRAME` bytes, a bad BCC, or a
    malformed line (the reason names the line, its tag and the field; ``offset`` its byte).
    """
    if not buf:
        return None, 0
    start = buf.find(SOH)
    if start == -1:
        raise FrameError("noise outside a frame", len(buf))
    if start > 0:
        raise FrameError("noise before SOH", start)
    end = buf.find(EOT, 1, MAX_FRAME)
    restart = buf.find(SOH, 1, end if end != -1 else MAX_FRAME)
    if restart != -1:
        # a new block began before this one ended: the line was cut mid-block
        raise FrameError("frame truncated by a new SOH", restart, restart)
    if end == -1:
        if len(buf) >= MAX_FRAME:
            raise FrameError(f"no EOT within {MAX_FRAME} bytes", MAX_FRAME, MAX_FRAME)
        return None, 0
    if len(buf) < end + 3:
        return None, 0
    body = buf[1:end]
    if buf[end + 1 : end + 3] != bcc_hex(body + bytes([EOT])):
        raise FrameError("BCC mismatch", 1, end + 1)
    try:
        return _parse_body(body), end + 3
    except FrameError as exc:
        # a checksum-valid block with a bad line is not resynchronisable noise: drop it whole
        raise FrameError(exc.reason, end + 3, exc.offset) from exc

"""The C-STORE SCP the retinographs send to: the one pynetdicom adapter of the gateway.

:class:`DicomReceiver` runs a pynetdicom Application Entity as a Storage SCP (PS3.4 Annex B)
that accepts exactly two abstract syntaxes: Ophthalmic Photography 8 Bit Image Storage, in the
transfer syntaxes :mod:`drivers.dicom.validate` decodes, and Verification (C-ECHO, PS3.4 Annex
A). Associations from a calling AE title not in the allow-list are rejected (A-ASSOCIATE-RJ,
"calling AE title not recognized", PS3.8 9.3.4) before any data flows.

Each C-STORE hands the object, as the bytes of a Part-10 file exactly as received (never decoded
here), to the asynchronous handler ``on_object(raw, calling_ae)``, and answers with the status
of its :class:`~drivers.dicom.Verdict` plus the reason as Error Comment (0000,0902), so the
camera's operator sees why an image was refused. Handler timeout: Refused: Out of Resources
(0xA700, the SCU may retry); handler exception: Processing Failure (0x0110).

Threading. pynetdicom serves each association on its own thread. The C-STORE handler runs on
that thread; it submits the handler coroutine to the asyncio loop captured by :meth:`start`
(``asyncio.run_coroutine_threadsafe``) and blocks that association thread - never the loop -
until the verdict arrives or ``verdict_timeout_s`` passes. So the status the SCU gets is the
real outcome (stored durably, or refused). :meth:`stop` shuts the server down from a worker
thread (``asyncio.to_thread``) because pynetdicom's shutdown joins association threads that may
be waiting for the loop, then joins every association thread it had within one overall
``shutdown_timeout_s`` (not per thread), and logs any thread still alive after it.

Resource limits: at most ``max_associations`` associations at once (a further request gets
A-ASSOCIATE-RJ "local limit exceeded", transient, PS3.8 9.3.4). The default is 4, not 2:
pynetdicom counts association *threads*, and a camera sending photographs back to back meets
the threads of its previous, released associations still winding down (seen at 2 in the
end-to-end test); 4 still bounds the memory of concurrent objects. P-DATA PDUs are at most
:data:`MAX_PDU` bytes; pynetdicom has no cap on the size of the data set it assembles from
them: only allow-listed calling AE titles get that far, and
:func:`drivers.dicom.validate.validate` refuses an object over
:data:`~drivers.dicom.validate.MAX_OBJECT_BYTES` before parsing it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.transport import ThreadedAssociationServer

from drivers.dicom import OP_8BIT_SOP_CLASS, ObjectHandler, Status, Verdict
from drivers.dicom.validate import SUPPORTED_TRANSFER_SYNTAXES
from drivers.errors import DeviceConfigError, TransientDeviceError

__all__ = ["DicomReceiver", "ReceiverSettings"]

VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"
#: the largest P-DATA-TF PDU accepted (pynetdicom's default, stated: 16 kB fragments)
MAX_PDU = 16382
_ERROR_COMMENT_MAX = 64  # (0000,0902) is LO

log = logging.getLogger(__name__)
logging.getLogger("pynetdicom").setLevel(logging.WARNING)


@dataclass(frozen=True, slots=True)
class ReceiverSettings:
    """Where and to whom the SCP listens. ``port=0`` binds a free port (see ``.port``)."""

    ae_title: str
    allowed_calling_aets: tuple[str, ...]
    port: int = 11112
    bind_address: str = "127.0.0.1"
    verdict_timeout_s: float = 20.0
    shutdown_timeout_s: float = 5.0
    max_associations: int = 4

    def __post_init__(self) -> None:
        if self.max_associations < 1:
            raise DeviceConfigError("dicom: max_associations must be at least 1")
        if not self.allowed_calling_aets:
            raise DeviceConfigError("dicom: allowed_calling_aets is empty (would accept anyone)")
        for title in (self.ae_title, *self.allowed_calling_aets):
            if not title.strip() or len(title) > 16 or "\\" in title:
                raise DeviceConfigError(f"dicom: invalid AE title {title!r} (1..16 chars, no \\)")


class DicomReceiver:
    """A C-STORE SCP feeding ``on_object``; ``async with`` it, or ``await start()``/``stop()``."""

    def __init__(self, settings: ReceiverSettings, on_object: ObjectHandler) -> None:
        self._settings = settings
        self._on_object = on_object
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ae: AE | None = None
        self._server: ThreadedAssociationServer | None = None

    @property
    def port(self) -> int:
        """The TCP port actually bound (useful with ``port=0``)."""
        if self._server is None:
            raise RuntimeError("DicomReceiver is not started")
        port: int = self._server.server_address[1]
        return port

    async def start(self) -> None:
        """Bind and serve in pynetdicom's threads; verdicts are awaited on the running loop."""
        if self._server is not None:
            raise RuntimeError("DicomReceiver already started")
        self._loop = asyncio.get_running_loop()
        s = self._settings
        ae = AE(ae_title=s.ae_title)
        ae.add_supported_context(OP_8BIT_SOP_CLASS, list(SUPPORTED_TRANSFER_SYNTAXES))
        ae.add_supported_context(VERIFICATION_SOP_CLASS)
        ae.require_calling_aet = list(s.allowed_calling_aets)
        ae.maximum_associations = s.max_associations
        ae.maximum_pdu_size = MAX_PDU
        try:
            server = ae.start_server(
                (s.bind_address, s.port),
                block=False,
                evt_handlers=[(evt.EVT_C_STORE, self._handle_store)],
            )
        except OSError as exc:
            raise TransientDeviceError(
                f"dicom: cannot listen on {s.bind_address}:{s.port}: {exc}"
            ) from exc
        if server is None:  # only with block=True
            raise RuntimeError("pynetdicom returned no server")
        self._ae, self._server = ae, server
        log.info(
            "DICOM SCP %s listening on %s:%d (calling AEs: %s)",
            s.ae_title,
            s.bind_address,
            self.port,
            ", ".join(s.allowed_calling_aets),
        )

    async def stop(self) -> None:
        """Abort open associations, close the socket, join every thread we started."""
        if self._ae is None:
            return
        ae, self._ae, self._server = self._ae, None, None
        await asyncio.to_thread(self._shutdown, ae, self._settings.shutdown_timeout_s)
        log.info("DICOM SCP %s stopped", self._settings.ae_title)

    async def __aenter__(self) -> DicomReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @staticmethod
    def _shutdown(ae: AE, timeout: float) -> None:
        """Shut pynetdicom down, then join its association threads within ``timeout`` in all."""
        deadline = time.monotonic() + timeout
        threads: list[threading.Thread] = list(ae.active_associations)
        ae.shutdown()
        threads += [t for t in threading.enumerate() if isinstance(t, Association) and t.ae is ae]
        threads = list(dict.fromkeys(threads))  # active ones are listed twice
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            log.warning(
                "DICOM SCP: %d association thread(s) still alive after %.1f s: %s",
                len(alive),
                timeout,
                ", ".join(sorted(alive)),
            )

    # -- pynetdicom's association threads ---------------------------------------------------

    def _handle_store(self, event: evt.Event) -> Dataset:
        calling = str(event.assoc.requestor.ae_title).strip()
        raw = event.encoded_dataset(include_meta=True)
        verdict = self._await_verdict(raw, calling)
        log.info(
            "C-STORE from %s: 0x%04X %s%s",
            calling,
            verdict.status,
            verdict.code,
            f" ({verdict.reason})" if verdict.reason else "",
        )
        rsp = Dataset()
        rsp.Status = int(verdict.status)
        if not verdict.accepted and verdict.reason:
            rsp.ErrorComment = verdict.reason[:_ERROR_COMMENT_MAX]
        return rsp

    def _await_verdict(self, raw: bytes, calling: str) -> Verdict:
        loop = self._loop
        timeout = self._settings.verdict_timeout_s
        if loop is None or loop.is_closed():
            return Verdict(Status.OUT_OF_RESOURCES, "stopping", "the gateway is stopping")
        try:
            future = asyncio.run_coroutine_threadsafe(self._call(raw, calling), loop)
        except RuntimeError:  # the loop closed between the check and the call
            return Verdict(Status.OUT_OF_RESOURCES, "stopping", "the gateway is stopping")
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return Verdict(Status.OUT_OF_RESOURCES, "timeout", f"not stored within {timeout:g} s")
        except concurrent.futures.CancelledError:
            return Verdict(Status.OUT_OF_RESOURCES, "stopping", "the gateway is stopping")
        except Exception as exc:  # noqa: BLE001 - any handler bug becomes a DICOM status
            log.error("dicom: object handler failed: %s", type(exc).__name__)
            return Verdict(Status.PROCESSING_FAILURE, "handler-error", type(exc).__name__)

    async def _call(self, raw: bytes, calling: str) -> Verdict:
        verdict: Any = await self._on_object(raw, calling)
        if not isinstance(verdict, Verdict):
            raise TypeError(f"on_object returned {type(verdict).__name__}, not a Verdict")
        return verdict

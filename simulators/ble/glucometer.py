"""A glucose meter's memory and its Record Access Control Point (0x2A52), Glucose Service 1.0.

A glucometer keeps every record (sequence number, Glucose Measurement value, optional Glucose
Measurement Context value) and sends them only when the collector asks through the RACP
(GLS 1.0, "Record Access Control Point" procedures), decoded with the production parser
(:func:`drivers.ble.gatt.racp.parse_racp_request`, whose refusals carry the Response Code that
answers them):

* Report stored records (all, <= / >= / within a range of sequence numbers, first, last): one
  Glucose Measurement notification per record, then its Context notification if it has one,
  then a Response Code indication: Success, or No Records Found when nothing matches.
* Report number of stored records: a Number of Stored Records response indication.
* Delete stored records: the matching records leave the memory (Success / No Records Found).
* Abort operation: the running procedure stops; the Response Code for Abort is Success.

GLS 1.0 application ATT errors refuse the write itself: Procedure Already In Progress (0x80)
for any request but Abort while a procedure runs, and Client Characteristic Configuration
Descriptor Improperly Configured (0x81) when the collector has not enabled RACP indications
(nor, for a report, Glucose Measurement notifications, where the records would go). Later
services (PLXS, CGMS) use the Core Specification Supplement's common codes 0xFE and 0xFD
instead; GLS 1.0 predates them.

Records stay in memory when they are reported, as in a real meter. For the drain accounting a
report finished by a confirmed Success indication delivers every record up to the highest it
sent (:attr:`Glucometer.highest_reported_in_completed_transfer`): a collector keeps a cursor
and asks for ">= last + 1" after a broken transfer, so the records it got before the break
are never reported again in a completed one.
Fault: ``disconnect_after=N`` ends the link (Remote User Terminated, 0x13) once N records of a
report are out, at most ``disconnects`` times in the meter's life; a record stored with
``garbled=True`` is first sent truncated, then whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from bumble import hci
from bumble.att import ATT_Error
from bumble.core import BaseBumbleError
from bumble.device import Connection

from drivers.ble.gatt.racp import (
    RacpGeneralResponse,
    RacpNumberOfRecordsResponse,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpRequestError,
    RacpResponse,
    RacpResponseCode,
    encode_racp_response,
    parse_racp_request,
)
from simulators.ble.peripheral import SimulatedPeripheral, truncated
from simulators.ble.profiles import RECORD_ACCESS_CONTROL_POINT as RACP

log = logging.getLogger(__name__)

GLUCOSE_MEASUREMENT = 0x2A18
GLUCOSE_MEASUREMENT_CONTEXT = 0x2A34
#: GLS 1.0 Attribute Protocol application error codes
PROCEDURE_ALREADY_IN_PROGRESS = 0x80
CCCD_IMPROPERLY_CONFIGURED = 0x81


@dataclass
class StoredRecord:
    """One record in the meter's memory: encoded Glucose Measurement (and Context) values."""

    sequence_number: int
    measurement: bytes
    context: bytes | None = None
    #: fault: the next report sends a truncated copy before the value
    garbled: bool = False


class Glucometer:
    """The RACP server of a glucose meter, on a peripheral serving the glucose profile."""

    def __init__(
        self,
        peripheral: SimulatedPeripheral,
        *,
        disconnect_after: int = 0,
        disconnects: int = 1,
        record_interval_s: float = 0.0,
        first_sequence_number: int = 1,
        on_reported: Callable[[], None] | None = None,
    ) -> None:
        self.peripheral = peripheral
        self.disconnect_after = disconnect_after
        self.disconnects_left = disconnects if disconnect_after > 0 else 0
        self.record_interval_s = record_interval_s
        self.on_reported = on_reported
        self.records: list[StoredRecord] = []
        #: the highest sequence number sent in a report that ended with a confirmed Success
        self.highest_reported_in_completed_transfer: int | None = None
        self.completed_transfers = 0
        self._next = first_sequence_number
        self._stored: set[int] = set()
        self._procedure: asyncio.Task[object] | None = None
        self._answering = False
        peripheral.server.handle_writes(RACP, self._on_racp_write)
        peripheral.disconnection_listeners.append(self._on_disconnection)

    @property
    def next_sequence_number(self) -> int:
        return self._next

    @property
    def undelivered(self) -> int:
        """Records above the highest one of a completed report (deleted ones too: lost)."""
        highest = self.highest_reported_in_completed_transfer
        return sum(1 for seq in self._stored if highest is None or seq > highest)

    def store(
        self, measurement: bytes, context: bytes | None = None, *, garbled: bool = False
    ) -> StoredRecord:
        """Keep a record; its sequence number is read from the measurement value (octets 1-2)."""
        sequence_number = int.from_bytes(measurement[1:3], "little")
        if sequence_number < self._next:
            raise ValueError(f"sequence number {sequence_number}: the next is {self._next}")
        record = StoredRecord(sequence_number, measurement, context, garbled)
        self.records.append(record)
        self._stored.add(sequence_number)
        self._next = sequence_number + 1
        return record

    # -- the control point ------------------------------------------------------------------

    def _on_racp_write(self, connection: Connection, value: bytes) -> None:
        """Take or refuse a request (ATT errors); the procedure then runs on its own."""
        abort = value[:1] == bytes([RacpOpCode.ABORT_OPERATION])
        running = self._busy(connection)
        if running and not abort:
            raise ATT_Error(PROCEDURE_ALREADY_IN_PROGRESS)
        server = self.peripheral.server
        if not server.subscription(connection, RACP)[1]:
            raise ATT_Error(CCCD_IMPROPERLY_CONFIGURED)
        try:
            request = parse_racp_request(value)
        except RacpRequestError as refused:
            if running:  # only a well-formed Abort may interrupt a procedure
                raise ATT_Error(PROCEDURE_ALREADY_IN_PROGRESS) from refused
            log.info("%s: RACP request refused: %s", self.peripheral.profile.name, refused)
            self._start(self._respond(connection, refused.response))
            return
        if (
            request.op_code == RacpOpCode.REPORT_STORED_RECORDS
            and not (server.subscription(connection, GLUCOSE_MEASUREMENT)[0])
        ):
            raise ATT_Error(CCCD_IMPROPERLY_CONFIGURED)
        if abort and running and self._procedure is not None:
            self._procedure.cancel()
        self._start(self._run(connection, request))

    def _busy(self, connection: Connection) -> bool:
        """Whether a procedure runs: it ends when its one indication has been confirmed.

        The confirmation reaches the server before the collector's next request (ATT is
        sequential), but the procedure's task wakes up from it some loop turns later: once the
        final indication is out, the bearer's pending confirmation is what counts.
        """
        task = self._procedure
        if task is None or task.done():
            return False
        if not self._answering:
            return True
        waiting = self.peripheral.device.gatt_server.pending_confirmations.get(connection)
        return waiting is not None and not waiting.done()

    def _start(self, work: Coroutine[Any, Any, object]) -> None:
        self._answering = False
        self._procedure = asyncio.create_task(work)

    def _select(self, request: RacpRequest) -> list[StoredRecord]:
        low = request.minimum if request.minimum is not None else 0
        high = request.maximum if request.maximum is not None else 0xFFFF
        match request.operator:
            case RacpOperator.FIRST_RECORD:
                return self.records[:1]
            case RacpOperator.LAST_RECORD:
                return self.records[-1:]
            case _:  # All records has neither bound; <=, >= and within a range have theirs
                return [r for r in self.records if low <= r.sequence_number <= high]

    async def _run(self, connection: Connection, request: RacpRequest) -> None:
        await asyncio.sleep(0)  # after the Write Response to the request
        op = request.op_code
        if op == RacpOpCode.ABORT_OPERATION:
            await self._respond(connection, RacpGeneralResponse(op, RacpResponseCode.SUCCESS))
            return
        selected = self._select(request)
        if op == RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS:
            await self._respond(connection, RacpNumberOfRecordsResponse(len(selected)))
            return
        if not selected:
            await self._respond(
                connection, RacpGeneralResponse(op, RacpResponseCode.NO_RECORDS_FOUND)
            )
            return
        if op == RacpOpCode.DELETE_STORED_RECORDS:
            gone = {r.sequence_number for r in selected}
            self.records = [r for r in self.records if r.sequence_number not in gone]
        elif not await self._report(connection, selected):
            return
        confirmed = await self._respond(
            connection, RacpGeneralResponse(op, RacpResponseCode.SUCCESS)
        )
        if confirmed and op == RacpOpCode.REPORT_STORED_RECORDS:
            top = max(r.sequence_number for r in selected)
            highest = self.highest_reported_in_completed_transfer
            self.highest_reported_in_completed_transfer = (
                top if highest is None else max(top, highest)
            )
            self.completed_transfers += 1
            if self.on_reported is not None:
                self.on_reported()

    async def _report(self, connection: Connection, records: list[StoredRecord]) -> bool:
        """Notify ``records``; False when the link was dropped on purpose (fault)."""
        server = self.peripheral.server
        for sent, record in enumerate(records, start=1):
            if record.garbled:
                await server.notify(connection, GLUCOSE_MEASUREMENT, truncated(record.measurement))
                record.garbled = False
            await server.notify(connection, GLUCOSE_MEASUREMENT, record.measurement)
            if record.context is not None:
                await server.notify(connection, GLUCOSE_MEASUREMENT_CONTEXT, record.context)
            if sent == self.disconnect_after and self.disconnects_left > 0:
                self.disconnects_left -= 1
                log.info("%s: fault: link dropped after %d record(s)", server.profile.name, sent)
                await self.peripheral.drain(connection)  # the records go out before the end
                with contextlib.suppress(hci.HCI_Error):
                    await connection.disconnect(hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR)
                return False
            await asyncio.sleep(self.record_interval_s)
        return True

    async def _respond(self, connection: Connection, response: RacpResponse) -> bool:
        """Indicate ``response``, the procedure's last word; whether it was confirmed."""
        self._answering = True
        try:
            return await self.peripheral.server.indicate(
                connection, RACP, encode_racp_response(response)
            )
        except (TimeoutError, BaseBumbleError) as error:
            log.warning("%s: RACP response not delivered: %s", self.peripheral.profile.name, error)
            return False

    def _on_disconnection(self, _connection: Connection, _reason: int) -> None:
        # the procedure ends with the link: the collector asks again on the next one
        if self._procedure is not None:
            self._procedure.cancel()

    async def close(self) -> None:
        if self._procedure is not None:
            self._procedure.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._procedure

"""The simulated glucose meter's Record Access Control Point, through bleak over the radio.

Glucose Service 1.0 procedures with real GATT bytes both ways: reports (all, from a sequence
number, a range, the last record), counts, deletes, refusals (GLS application errors and RACP
Response Codes), abort, a link dropped in the middle of a transfer, and a measuring glucometer
whose ledger matches the records the gateway fetched.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from bleak import BleakClient
from bleak.exc import BleakGATTProtocolError
from bumble import hci

from drivers.ble.bumble_backend import BumbleBle
from drivers.ble.gatt.glucose import Meal, merge_glucose_records
from drivers.ble.gatt.racp import (
    RacpGeneralResponse,
    RacpNumberOfRecordsResponse,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpResponseCode,
    encode_racp_request,
    parse_racp_response,
)
from simulators.ble.device import SimulatedBleDevice
from simulators.ble.link import VirtualRadio
from simulators.ble.profiles import PROFILES
from simulators.ledger import Ledger, read_ledger
from simulators.scenario import BleScenario
from tests.ble_bench import (
    ALL,
    AT_LEAST,
    COUNT,
    PARIS,
    RACP,
    REPORT,
    Collector,
    find,
    glucose_bench,
    run,
    success,
    until,
)


def test_racp_reports_all_or_from_a_sequence_number_and_counts_records() -> None:
    async def scenario() -> None:
        async with (
            glucose_bench(5) as (ble, _peripheral, meter),
            BleakClient(await find(ble, PROFILES["glucose"]), backend=ble.client) as client,
        ):
            gateway = Collector(client)
            await gateway.subscribe()
            assert await gateway.ask(COUNT, ALL) == RacpNumberOfRecordsResponse(5)
            assert await gateway.ask(COUNT, AT_LEAST, 4) == RacpNumberOfRecordsResponse(2)
            assert meter.undelivered == 5

            assert await gateway.ask(REPORT, ALL) == success(REPORT)
            records, orphans = merge_glucose_records(gateway.values)
            assert [r.measurement.sequence_number for r in records] == [1, 2, 3, 4, 5]
            assert orphans == ()
            # every third record has a context (preprandial), sent right after its measurement
            assert [r.context.meal if r.context else None for r in records] == [
                None, None, Meal.PREPRANDIAL, None, None,
            ]  # fmt: skip
            # counted once the Success indication is confirmed (the meter hears it just after)
            await until(lambda: meter.highest_reported_in_completed_transfer == 5)
            assert meter.undelivered == 0
            assert len(meter.records) == 5  # a meter keeps its memory

            gateway.values.clear()
            assert await gateway.ask(REPORT, AT_LEAST, 4) == success(REPORT)
            assert gateway.sequence_numbers() == [4, 5]
            gateway.values.clear()
            within = RacpOperator.WITHIN_RANGE
            assert await gateway.ask(REPORT, within, 2, 3) == success(REPORT)
            assert gateway.sequence_numbers() == [2, 3]
            gateway.values.clear()
            assert await gateway.ask(REPORT, RacpOperator.LAST_RECORD) == success(REPORT)
            assert gateway.sequence_numbers() == [5]
            await until(lambda: meter.completed_transfers == 4)

    run(scenario)


def test_racp_answers_no_records_found_and_refuses_what_it_cannot_do() -> None:
    async def scenario() -> None:
        async with (
            glucose_bench(3) as (ble, _peripheral, meter),
            BleakClient(await find(ble, PROFILES["glucose"]), backend=ble.client) as client,
        ):
            gateway = Collector(client)
            report_all = encode_racp_request(RacpRequest(REPORT, ALL))
            # RACP indications not enabled: GLS 1.0 application error 0x81
            with pytest.raises(BleakGATTProtocolError) as refused:
                await gateway.send(report_all)
            assert refused.value.code == 0x81
            await client.start_notify(
                RACP, lambda _c, d: gateway.responses.put_nowait(parse_racp_response(bytes(d)))
            )
            with pytest.raises(BleakGATTProtocolError) as refused:
                await gateway.send(report_all)  # nor Glucose Measurement notifications
            assert refused.value.code == 0x81
            await gateway.subscribe(racp=False)

            no_records = RacpGeneralResponse(REPORT, RacpResponseCode.NO_RECORDS_FOUND)
            assert await gateway.ask(REPORT, AT_LEAST, 99) == no_records
            await gateway.send(bytes([0x07, 0x01]))  # an op code GLS does not define
            assert await gateway.response() == RacpGeneralResponse(
                0x07, RacpResponseCode.OP_CODE_NOT_SUPPORTED
            )
            await gateway.send(bytes([REPORT, AT_LEAST, 0x02]) + bytes(7))  # user facing time
            assert await gateway.response() == RacpGeneralResponse(
                REPORT, RacpResponseCode.OPERAND_NOT_SUPPORTED
            )
            await gateway.send(bytes([REPORT, 0x09]))  # an RFU operator
            assert await gateway.response() == RacpGeneralResponse(
                REPORT, RacpResponseCode.OPERATOR_NOT_SUPPORTED
            )
            assert gateway.values == []

            delete = RacpOpCode.DELETE_STORED_RECORDS
            assert await gateway.ask(delete, RacpOperator.LESS_THAN_OR_EQUAL, 2) == success(delete)
            assert await gateway.ask(COUNT, ALL) == RacpNumberOfRecordsResponse(1)
            assert await gateway.ask(delete, ALL) == success(delete)
            assert await gateway.ask(REPORT, ALL) == no_records
            assert meter.records == []
            assert meter.undelivered == 3  # deleted before the gateway had them: lost

    run(scenario)


def test_racp_abort_stops_a_report_and_requests_meanwhile_are_refused() -> None:
    async def scenario() -> None:
        async with (
            glucose_bench(40, record_interval_s=0.02) as (ble, _peripheral, meter),
            BleakClient(await find(ble, PROFILES["glucose"]), backend=ble.client) as client,
        ):
            gateway = Collector(client)
            await gateway.subscribe()
            await gateway.send(encode_racp_request(RacpRequest(REPORT, ALL)))
            await until(lambda: len(gateway.sequence_numbers()) >= 2)
            with pytest.raises(BleakGATTProtocolError) as refused:
                await gateway.send(encode_racp_request(RacpRequest(COUNT, ALL)))
            assert refused.value.code == 0x80  # GLS 1.0: Procedure Already In Progress
            abort = RacpOpCode.ABORT_OPERATION
            assert await gateway.ask(abort, RacpOperator.NULL) == success(abort)
            got = gateway.sequence_numbers()
            assert 2 <= len(got) < 40
            assert gateway.responses.empty()  # the aborted report does not answer
            assert meter.completed_transfers == 0
            assert meter.undelivered == 40

            assert await gateway.ask(REPORT, AT_LEAST, got[-1] + 1) == success(REPORT)
            assert gateway.sequence_numbers() == list(range(1, 41))
            await until(lambda: meter.undelivered == 0)
            assert await gateway.ask(abort, RacpOperator.NULL) == success(abort)  # nothing runs

    run(scenario)


def test_a_link_dropped_mid_transfer_resumes_without_gap_or_duplicate() -> None:
    async def scenario() -> None:
        async with glucose_bench(8, disconnect_after=3) as (ble, peripheral, meter):
            device = await find(ble, PROFILES["glucose"])
            dropped = asyncio.Event()
            client = BleakClient(device, lambda _c: dropped.set(), backend=ble.client)
            await client.connect()
            gateway = Collector(client)
            await gateway.subscribe()
            await gateway.send(encode_racp_request(RacpRequest(REPORT, ALL)))
            async with asyncio.timeout(5):
                await dropped.wait()
            assert gateway.sequence_numbers() == [1, 2, 3]
            assert gateway.responses.empty()
            assert peripheral.disconnections == [hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR]
            assert meter.undelivered == 8

            await until(lambda: not peripheral.connections)
            await client.connect()  # the meter advertises again; the fault fired its one time
            await gateway.subscribe()
            last = gateway.sequence_numbers()[-1]
            assert await gateway.ask(REPORT, AT_LEAST, last + 1) == success(REPORT)
            assert gateway.sequence_numbers() == list(range(1, 9))
            records, orphans = merge_glucose_records(gateway.values)
            assert len(records) == 8
            assert orphans == ()
            await until(lambda: meter.highest_reported_in_completed_transfer == 8)
            assert meter.undelivered == 0
            await client.disconnect()

    run(scenario)


def test_a_measuring_glucometer_keeps_records_until_a_transfer_completes(tmp_path: Path) -> None:
    async def scenario() -> None:
        ledger = Ledger(tmp_path / "ledger.jsonl")
        plan = BleScenario(
            measurements_per_hour=1,  # only the stored records, in practice
            stored_at_start=6,
            racp_disconnect_after=4,
            glucose_unit="mg/dL",
        )
        async with VirtualRadio(peripherals=1) as radio:
            meter = SimulatedBleDevice(
                "glu-1", "glucose", "D0:5A:4E:B9:00:08", radio.hci(0), plan, ledger, PARIS,
                random.Random(5),
            )  # fmt: skip
            running = asyncio.create_task(meter.run())
            async with BumbleBle(radio.hci_transport) as ble:
                dropped = asyncio.Event()
                device = await find(ble, PROFILES["glucose"])
                client = BleakClient(device, lambda _c: dropped.set(), backend=ble.client)
                gateway = Collector(client)
                await client.connect()
                await gateway.subscribe()
                await gateway.send(encode_racp_request(RacpRequest(REPORT, ALL)))
                async with asyncio.timeout(5):
                    await dropped.wait()  # the fault: after four records
                assert gateway.sequence_numbers() == [1, 2, 3, 4]
                assert meter.undelivered == 6

                await client.connect()
                await gateway.subscribe()
                assert await gateway.ask(REPORT, AT_LEAST, 5) == success(REPORT)
                assert gateway.sequence_numbers() == [1, 2, 3, 4, 5, 6]
                meter.stop_producing()
                async with asyncio.timeout(5):
                    await running  # returns once a completed transfer took every record
                await client.disconnect()
        ledger.close()

        lines = read_ledger(tmp_path / "ledger.jsonl")
        assert len(lines) == 6
        records, _ = merge_glucose_records(gateway.values)
        for record, line in zip(records, lines, strict=True):
            concentration = record.measurement.concentration
            assert concentration is not None
            assert concentration.unit == "kg/L"
            mg_dl = concentration.value.decimal().scaleb(5)  # 1 mg/dL = 10^-5 kg/L
            assert (line["code"], line["unit"], line["value"]) == ("15074-8", "mg/dL", mg_dl)

    run(scenario)

"""The raw-signal front-ends' deliveries: the NIBP module and the air-puff tonometer (issue #6).

Their drivers deliver raw recordings; the readings are derived from them on the way to the
ingest (edge/pipeline/derive.py): the sensor calibration valid on the day of the record, then
the signal core. A refused record raises ``signal.refused`` so the station measures again
while the patient is still there, and is kept for replay (``RefusedArchive``). The NIBP
module's samples also feed the live cuff pressure (edge/pipeline/live.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from calibration.records import CalibrationBook
from drivers.codec.sampletransfer import TransferStats
from drivers.devices.airpuff import AirpuffDriver
from drivers.devices.nibp import NibpDriver
from drivers.readings import Delivery, RawRecording
from drivers.transport import ByteTransport
from edge.config import AirpuffDevice, NibpDevice, RawSignalDevice
from edge.events import Events
from edge.pipeline.derive import RefusedArchive, SensorCalibration, active_sensor, derived
from edge.pipeline.live import LivePressure
from edge.signal.results import Refusal
from edge.supervise import DeviceHealth

Deliveries = Callable[[ByteTransport], AsyncIterator[Delivery]]


def raw_deliveries(
    device_id: str,
    device: RawSignalDevice,
    *,
    calibrations: CalibrationBook,
    recordings_dir: Path,
    timezone: str,
    events: Events,
    health: DeviceHealth,
    transfer: TransferStats,
) -> Deliveries:
    """A raw-signal front-end's deliveries, with the readings derived from its records.

    ``transfer`` receives the driver's counters (the caller keeps it across reconnects).
    """
    nominal = SensorCalibration(device.pressure_gain, device.pressure_offset)
    serial = device.serial_number

    def sensor(rec: RawRecording) -> SensorCalibration:
        # the calibration valid on the day the record was taken (its device clock)
        return active_sensor(nominal, calibrations, serial, rec.device_time.date())

    archive = RefusedArchive(recordings_dir / device_id, device.keep_refused)

    def refused(rec: RawRecording, refusal: Refusal) -> None:
        # the station measures again while the patient is still there
        events.raise_event(
            "signal.refused",
            "warning",
            device_id,
            record=rec.record_key,
            recording=rec.kind,
            site=rec.site,
            code=refusal.code,
            reason=refusal.reason,
        )

    if isinstance(device, NibpDevice):
        zone = ZoneInfo(timezone)
        live = LivePressure(
            lambda: active_sensor(nominal, calibrations, serial, datetime.now(zone).date()),
            health,
        )

        def deliveries(transport: ByteTransport) -> AsyncIterator[Delivery]:
            driver = NibpDriver(transport, device_id, stats=transfer, on_samples=live.feed)
            return derived(driver.deliveries(), device_id, sensor, refused, archive)

        return deliveries
    assert isinstance(device, AirpuffDevice)

    def puffs(transport: ByteTransport) -> AsyncIterator[Delivery]:
        driver = AirpuffDriver(transport, device_id, stats=transfer)
        return derived(driver.deliveries(), device_id, sensor, refused, archive)

    return puffs

"""The simulated NIBP module and air-puff front-end on real ptys, read by the production drivers.

Each test runs a simulator (simulators/nibp.py, simulators/airpuff.py) on a pty and a small
supervisor loop (reconnect on TransientDeviceError, acknowledge after "commit", as
edge/supervise.py does) over a real ``serial://`` transport. Recordings must arrive whole and
equal, count for count, to what the simulated transducer digitised; line noise, lost frames
and pulled cables may cost resends and repeated copies of one measurement (same record key,
same samples) but never a measurement, and never a second key for one.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from drivers.devices.airpuff import AirpuffDriver
from drivers.devices.nibp import NibpDriver
from drivers.errors import TransientDeviceError
from drivers.readings import Delivery, RawRecording
from drivers.transport import ByteTransport, open_transport
from simulators.airpuff import AirpuffScenario, SimulatedAirpuff, airpuff_counts
from simulators.ledger import Ledger, read_ledger
from simulators.nibp import NibpScenario, SimulatedNibp, nibp_counts
from simulators.rawdev import Waveform

ZONE = "Europe/Paris"
GUARD = 25.0  # seconds before a hung test fails (not a timing assertion: a hang guard)


class Driver(Protocol):
    def deliveries(self) -> Any: ...


class Gateway:
    """Reconnects for ever; records every delivery with the connection that brought it."""

    def __init__(self, url: str, make: Callable[[ByteTransport], Driver]) -> None:
        self.url = url
        self.make = make
        self.deliveries: list[tuple[int, Delivery]] = []
        self.drivers: list[Driver] = []

    async def run(self) -> None:
        while True:
            transport = open_transport(self.url)
            try:
                await transport.open()
                driver = self.make(transport)
                self.drivers.append(driver)
                async for delivery in driver.deliveries():
                    self.deliveries.append((len(self.drivers), delivery))
                    await delivery.acknowledge()  # "committed"
            except TransientDeviceError:
                await asyncio.sleep(0.05)
            finally:
                await transport.close()

    def recordings(self) -> dict[str, RawRecording]:
        """One recording per record key; every copy of a key must hold the same samples."""
        out: dict[str, RawRecording] = {}
        for _, delivery in self.deliveries:
            (rec,) = delivery.recordings
            first = out.setdefault(rec.record_key, rec)
            for name, channel in rec.channels.items():
                assert np.array_equal(channel, first.channels[name]), rec.record_key
        return out


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(GUARD):
        while not condition():
            await asyncio.sleep(0.01)


def measurement_id(key: str) -> int:
    return int(key.split("|")[2])


def nibp_wave(waves: list[Waveform]) -> Callable[[np.random.Generator], Waveform]:
    """A 10 s deflation ramp with a 1.2 Hz ripple: the transport does not care for physiology."""

    def make(gen: np.random.Generator) -> Waveform:
        t = np.arange(0, 10, 1 / 500)
        p = 170 - 12 * t + 1.5 * np.sin(2 * np.pi * 1.2 * t) + gen.normal(0, 0.2, len(t))
        truth = {"systolic": 121.0, "diastolic": 79.0, "mean": 93.0, "heart_rate": 72.0}
        waves.append(Waveform(p, 500.0, truth))
        return waves[-1]

    return make


def airpuff_wave(waves: list[Waveform]) -> Callable[[np.random.Generator], Waveform]:
    """A 25 ms puff: a half-sine plenum pressure and two light peaks."""

    def make(gen: np.random.Generator) -> Waveform:
        t = np.arange(0, 0.025, 1 / 16000)
        pressure = 60 * np.sin(np.pi * t / 0.025) + gen.normal(0, 0.1, len(t))
        peaks = np.exp(-(((t - 0.008) / 0.001) ** 2)) + np.exp(-(((t - 0.017) / 0.001) ** 2))
        light = 0.1 + 0.8 * peaks
        truth = {"iopg": 15.5, "ch": 10.2, "iopcc": 16.1, "p1": 12.0, "p2": 19.0}
        waves.append(Waveform(pressure, 16000.0, truth, light=light))
        return waves[-1]

    return make


def check_ledger(path: Path, recordings: dict[str, RawRecording], codes: int) -> None:
    """``codes`` lines per measurement, at the device time the recording carries."""
    lines = read_ledger(path)
    assert len(lines) == codes * len(recordings)
    assert all(line["derived"] is True and line["status"] == "completed" for line in lines)
    times = {rec.device_time for rec in recordings.values()}
    assert {datetime.fromisoformat(line["time"]).replace(tzinfo=None) for line in lines} == times
    by_id: dict[int, int] = {}
    for line in lines:
        by_id[line["measurement"]] = by_id.get(line["measurement"], 0) + 1
    assert by_id == {measurement_id(k): codes for k in recordings}


def test_nibp_measurements_arrive_whole_through_noise_and_lost_frames(tmp_path: Path) -> None:
    link, waves = tmp_path / "nibp", list[Waveform]()
    scenario = NibpScenario(
        patients_per_hour=36000, speed=20, noise_rate=0.02, drop_rate=0.02, ack_timeout=1.0
    )
    ledger = Ledger(tmp_path / "ledger.jsonl")

    async def main() -> tuple[SimulatedNibp, Gateway]:
        sim = SimulatedNibp(
            "nibp-1", link, scenario, ledger, ZONE, random.Random(3), nibp_wave(waves)
        )
        gateway = Gateway(f"serial://{link}", lambda t: NibpDriver(t, "nibp-1"))
        device = asyncio.create_task(sim.run())
        gw = asyncio.create_task(gateway.run())
        await until(lambda: sim.measurements >= 3)
        sim.stop_producing()
        await asyncio.wait_for(device, GUARD)  # returns when every measurement was ACKed
        gw.cancel()
        await asyncio.gather(gw, return_exceptions=True)
        return sim, gateway

    sim, gateway = asyncio.run(main())
    ledger.close()
    recordings = gateway.recordings()
    assert len(recordings) == sim.measurements == len(waves)
    for key, wave in zip(sorted(recordings, key=measurement_id), waves, strict=True):
        rec = recordings[key]
        assert rec.refused is None
        assert rec.fs == scenario.fs
        assert np.array_equal(rec.channels["pressure"], nibp_counts(wave, scenario))
    check_ledger(tmp_path / "ledger.jsonl", recordings, codes=4)
    fe = sim.frontend
    assert fe.dropped_frames + fe.noisy_frames > 0, "the line faults were exercised"
    assert sim.undelivered == 0


def test_nibp_cable_pulled_mid_measurement_the_measurement_arrives_after_reconnect(
    tmp_path: Path,
) -> None:
    link, waves = tmp_path / "nibp", list[Waveform]()
    scenario = NibpScenario(patients_per_hour=0.001, speed=10, ack_timeout=1.0)
    ledger = Ledger(tmp_path / "ledger.jsonl")
    replugged = asyncio.Event()

    async def main() -> tuple[SimulatedNibp, Gateway]:
        sim = SimulatedNibp(
            "nibp-1", link, scenario, ledger, ZONE, random.Random(5), nibp_wave(waves)
        )

        def on_samples(counts: object, fs: float) -> None:
            if not replugged.is_set() and sim.port.plugged:
                sim.port.unplug()  # the cable is pulled as the first samples arrive
                asyncio.get_running_loop().call_later(0.5, replug)

        def replug() -> None:
            sim.port.plug()
            replugged.set()

        gateway = Gateway(
            f"serial://{link}", lambda t: NibpDriver(t, "nibp-1", on_samples=on_samples)
        )
        device = asyncio.create_task(sim.run())
        gw = asyncio.create_task(gateway.run())
        await until(lambda: sim.frontend.replays >= 1)  # the driver is listening
        assert isinstance(gateway.drivers[-1], NibpDriver)
        await gateway.drivers[-1].start(160)  # the host starts the measurement
        await until(lambda: sim.measurements >= 1)
        sim.stop_producing()
        await asyncio.wait_for(device, GUARD)
        gw.cancel()
        await asyncio.gather(gw, return_exceptions=True)
        return sim, gateway

    _, gateway = asyncio.run(main())
    ledger.close()
    assert replugged.is_set()
    recordings = gateway.recordings()
    (key,) = recordings
    (wave,) = waves
    assert np.array_equal(recordings[key].channels["pressure"], nibp_counts(wave, scenario))
    assert min(conn for conn, _ in gateway.deliveries) >= 2, "delivered after the reconnect"
    check_ledger(tmp_path / "ledger.jsonl", recordings, codes=4)


def test_airpuff_exams_arrive_whole_through_noise_lost_frames_and_unplugs(
    tmp_path: Path,
) -> None:
    link, waves = tmp_path / "tono", list[Waveform]()
    scenario = AirpuffScenario(
        patients_per_hour=36000,
        speed=20,
        eye_interval=1.0,
        noise_rate=0.05,
        drop_rate=0.05,
        ack_timeout=0.5,
        unplug_every=1.0,
        unplug_for=0.2,
    )
    ledger = Ledger(tmp_path / "ledger.jsonl")

    async def main() -> tuple[SimulatedAirpuff, Gateway]:
        sim = SimulatedAirpuff(
            "tono-2", link, scenario, ledger, ZONE, random.Random(7), airpuff_wave(waves)
        )
        gateway = Gateway(f"serial://{link}", lambda t: AirpuffDriver(t, "tono-2"))
        device = asyncio.create_task(sim.run())
        gw = asyncio.create_task(gateway.run())
        await until(lambda: sim.measurements >= 6 and sim.frontend.unplugs >= 2)
        sim.stop_producing()
        await asyncio.wait_for(device, GUARD)
        gw.cancel()
        await asyncio.gather(gw, return_exceptions=True)
        return sim, gateway

    sim, gateway = asyncio.run(main())
    ledger.close()
    recordings = gateway.recordings()
    assert len(recordings) == sim.measurements == len(waves)
    assert sim.measurements % 2 == 0  # whole exams: the last one finished before the drain
    keys = sorted(recordings, key=measurement_id)
    assert [recordings[k].site for k in keys] == ["right", "left"] * (len(keys) // 2)
    for key, wave in zip(keys, waves, strict=True):
        rec = recordings[key]
        expected = airpuff_counts(wave, scenario)
        assert np.array_equal(rec.channels["pressure"], expected[:, 0])
        assert np.array_equal(rec.channels["light"], expected[:, 1])
    check_ledger(tmp_path / "ledger.jsonl", recordings, codes=3)
    codes = {(line["site"], line["code"]) for line in read_ledger(tmp_path / "ledger.jsonl")}
    assert codes == {
        (eye, code)
        for eye, iopg in (("right", "79892-6"), ("left", "79893-4"))
        for code in (iopg, "corneal-hysteresis", "iop-corneal-compensated")
    }
    assert sim.frontend.dropped_frames + sim.frontend.noisy_frames > 0


def test_nibp_host_stop_aborts_and_the_attempt_is_delivered_refused(tmp_path: Path) -> None:
    link, waves = tmp_path / "nibp", list[Waveform]()
    scenario = NibpScenario(patients_per_hour=0.001, speed=1, ack_timeout=1.0)  # STOP comes early
    ledger = Ledger(tmp_path / "ledger.jsonl")
    stopped = asyncio.Event()

    async def main() -> tuple[SimulatedNibp, Gateway]:
        sim = SimulatedNibp(
            "nibp-1", link, scenario, ledger, ZONE, random.Random(9), nibp_wave(waves)
        )

        def on_samples(counts: object, fs: float) -> None:
            stopped.set()

        gateway = Gateway(
            f"serial://{link}", lambda t: NibpDriver(t, "nibp-1", on_samples=on_samples)
        )
        device = asyncio.create_task(sim.run())
        gw = asyncio.create_task(gateway.run())
        await until(lambda: sim.frontend.replays >= 1)
        driver = gateway.drivers[-1]
        assert isinstance(driver, NibpDriver)
        await driver.start(160)
        await until(stopped.is_set)  # deflating: the first samples are in
        await driver.stop()
        await until(lambda: sim.measurements >= 1)
        sim.stop_producing()
        await asyncio.wait_for(device, GUARD)
        gw.cancel()
        await asyncio.gather(gw, return_exceptions=True)
        return sim, gateway

    _, gateway = asyncio.run(main())
    ledger.close()
    (rec,) = gateway.recordings().values()
    assert rec.refused == "aborted-by-host"
    (wave,) = waves
    recorded = len(rec.channels["pressure"])
    assert 0 < recorded < len(wave.pressure_mmhg)  # cut short, and what was taken is kept
    assert np.array_equal(rec.channels["pressure"], nibp_counts(wave, scenario)[:recorded])
    lines = read_ledger(tmp_path / "ledger.jsonl")
    assert {(line["code"], line["value"], line["status"]) for line in lines} == {
        (code, None, "aborted-by-host") for code in ("8480-6", "8462-4", "8478-0", "8867-4")
    }

"""Config validation: every fault reported with file, key path and line; exit 78."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from edge.cli import main
from edge.config_loader import EX_CONFIG, ConfigError, key_lines, load_config

EXAMPLE = Path(__file__).parents[2] / "examples" / "simulated-bus.toml"

BROKEN = """\
[gateway]
bus_id = "bus-29-01"
state_dir = "/tmp/x"
colour = "blue"

[mqtt]
host = "127.0.0.1"
port = "eighteen"
tls = false

[devices.tono-1]
kind = "ct80"
transport = "serial://?baudrate=9600"
serial_number = "CT80-1"

[devices."tono-2"]
kind = "ct80"
serial_number = "CT80-2"
"""


def _check(path: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check-config", str(path), *extra])
    return result.exit_code, result.output


def test_shipped_examples_are_valid() -> None:
    assert _check(EXAMPLE) == (0, "OK\n")
    assert _check(EXAMPLE.parents[1] / "systemd" / "santebus.toml.example") == (0, "OK\n")


def test_each_fault_is_reported_with_its_location_and_exit_78(tmp_path: Path) -> None:
    cfg = tmp_path / "bus.toml"
    cfg.write_text(BROKEN)
    code, out = _check(cfg)
    assert code == EX_CONFIG == 78
    lines = out.splitlines()
    assert f"config error: {cfg}:4: gateway.colour: unknown key" in lines
    assert any(
        line.startswith(f"config error: {cfg}:8: mqtt.port: Input should be a valid integer")
        for line in lines
    )
    assert (
        f"config error: {cfg}:13: devices.tono-1.transport: serial path must be absolute, got ''"
        in lines
    )
    assert f"config error: {cfg}:16: devices.tono-2.transport: Field required" in lines
    assert len(lines) == 4


def test_toml_syntax_error_has_a_line(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[gateway]\nbus_id = "b"\nstate_dir = \n')
    code, out = _check(cfg)
    assert code == 78
    assert out.startswith(f"config error: {cfg}:3: <root>: TOML syntax")


def test_missing_file(tmp_path: Path) -> None:
    code, out = _check(tmp_path / "nope.toml")
    assert code == 78
    assert "cannot read: No such file or directory" in out


def test_overrides_change_values_and_are_blamed_on_the_command_line() -> None:
    config = load_config(
        EXAMPLE, ["mqtt.port=18830", "mqtt.host=localhost", "gateway.bus_id=bus-x"]
    )
    assert (config.mqtt.port, config.mqtt.host, config.gateway.bus_id) == (
        18830,
        "localhost",
        "bus-x",
    )
    code, out = _check(EXAMPLE, "--set", "mqtt.port=0")
    assert code == 78
    assert "config error: --set: mqtt.port: Input should be greater than or equal to 1" in out
    code, out = _check(EXAMPLE, "--set", "novalue")
    assert (code, "expected key.path=value" in out) == (78, True)


def test_plaintext_mqtt_is_refused_for_a_remote_broker() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(EXAMPLE, ["mqtt.host=broker.example.org"])
    (issue,) = info.value.issues
    assert issue.path == "mqtt"
    assert "tls = false is only allowed for a loopback host" in issue.message


def test_simulation_table_is_validated_by_the_simulators_schema(tmp_path: Path) -> None:
    code, out = _check(EXAMPLE, "--set", "simulation.devices.tono-1.noise_rate=2.0")
    assert code == 78
    assert "simulation.devices.tono-1.noise_rate: Input should be less than or equal to 1" in out


def test_key_lines_handles_tables_dotted_and_quoted_keys() -> None:
    lines = key_lines('a = 1\n[t."x-1"]\nb.c = 2\n[[arr]]\nd = 3\n')
    assert lines[("a",)] == 1
    assert lines[("t", "x-1")] == 2
    assert lines[("t", "x-1", "b", "c")] == 3
    assert lines[("arr", "d")] == 5


def test_errors_caused_by_set_are_blamed_on_the_command_line() -> None:
    code, out = _check(EXAMPLE, "--set", "outbox.high_water=[0.5, 2.0]")
    assert code == 78
    assert (
        "config error: --set: outbox.high_water.1: Input should be less than or equal to 1" in out
    )
    code, out = _check(EXAMPLE, "--set", "mqtt.host=broker.example.org")
    assert "config error: --set: mqtt: tls = false is only allowed for a loopback host" in out
    code, out = _check(EXAMPLE, "--set", "devices.tono-2.kind=ct80")
    assert "config error: --set: devices.tono-2.transport: Field required" in out


def test_a_bad_table_name_is_reported_as_the_table(tmp_path: Path) -> None:
    cfg = tmp_path / "bus.toml"
    cfg.write_text(EXAMPLE.read_text().replace("[devices.tono-1]", "[devices.Tono_1]"))
    code, out = _check(cfg, "--set", "simulation.devices={}")
    assert code == 78
    (line,) = out.splitlines()
    assert line.startswith(f"config error: {cfg}:")
    assert ": devices.Tono_1: String should match pattern" in line


def test_real_path_drops_union_tags_and_keeps_nested_missing_keys() -> None:
    from edge.config_loader import _real_path

    data = {"devices": {"t": {"kind": "ct80"}}}
    assert _real_path(data, ("devices", "t", "ct80", "transport")) == ("devices", "t", "transport")
    assert _real_path(data, ("devices", "t", "[key]")) == ("devices", "t")
    assert _real_path({"a": {}}, ("a", "b", "c")) == ("a", "b", "c")


def test_stations_name_known_devices_and_each_device_once() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(EXAMPLE, ('stations.eye.devices=["tono-9"]',))
    assert "station 'eye' names unknown device 'tono-9'" in str(info.value.issues)
    with pytest.raises(ConfigError) as info:
        load_config(EXAMPLE, ('stations.eye.devices=["tono-1"]', 'stations.bp.devices=["tono-1"]'))
    assert "device 'tono-1' is in stations 'eye' and 'bp'" in str(info.value.issues)
    config = load_config(EXAMPLE, ('stations.eye.devices=["tono-1"]',))
    assert (config.station_of("tono-1"), config.station_of("other")) == ("eye", None)


BPM = [
    "devices.bpm-1.kind=ble",
    "devices.bpm-1.profile=blood-pressure",
    "devices.bpm-1.address=D0:5A:4E:B9:00:01",
    "devices.bpm-1.serial_number=BPM-1",
    "simulation.devices.bpm-1.kind=ble",
]


def test_ble_devices_are_checked_and_each_fault_is_located(tmp_path: Path) -> None:
    cfg = tmp_path / "bus.toml"
    cfg.write_text(
        EXAMPLE.read_text()
        + '\n[devices.gluco-1]\nkind = "ble"\nprofile = "glucose"\naddress = "D0:5A:4E:B9:00"\n'
        'adapter = "hci0"\nserial_number = "G-1"\n'
    )
    sets = [*BPM, "devices.bpm-1.profile=spirometer", "simulation.devices.bpm-1.clock_skew=5",
            "simulation.devices.tono-1.colour=5"]  # fmt: skip
    code, out = _check(cfg, *(arg for s in sets for arg in ("--set", s)))
    assert code == EX_CONFIG
    assert f"{cfg}:42: devices.gluco-1.address: String should match pattern" in out
    assert f"{cfg}:43: devices.gluco-1.adapter: BLE adapter 'hci0': expected bluez:hciN" in out
    assert "--set: devices.bpm-1.profile: Input should be 'blood-pressure', 'glucose'" in out
    # the union tag, explicit (kind = "ble") or left out (a tonometer), is not a key
    assert "simulation.devices.bpm-1.clock_skew: unknown key" in out
    assert "simulation.devices.tono-1.colour: unknown key" in out
    assert _check(EXAMPLE, *(arg for s in BPM for arg in ("--set", s))) == (0, "OK\n")


def test_two_ble_devices_with_one_address_are_refused() -> None:
    other = [s.replace("bpm-1", "bpm-2").replace("D0:5A:4E:B9:00:01", "d0:5a:4e:b9:00:01")
             for s in BPM]  # fmt: skip
    with pytest.raises(ConfigError, match="have the same address d0:5a:4e:b9:00:01"):
        load_config(EXAMPLE, [*BPM, *other])


def test_raw_signal_devices_are_checked_and_each_fault_is_located(tmp_path: Path) -> None:
    cfg = tmp_path / "bus.toml"
    cfg.write_text(
        EXAMPLE.read_text()
        + '\n[devices.nibp-1]\nkind = "nibp"\ntransport = "serial:///dev/santebus/nibp"\n'
        'serial_number = "NIBP-1"\npressure_gain = 0\n'
        '\n[devices.ora-1]\nkind = "airpuff"\ntransport = "serial:///dev/santebus/ora"\n'
        'serial_number = "ORA-1"\nkeep_refused = -1\n'
        '\n[simulation.devices.nibp-1]\nkind = "nibp"\nspeed = 0\n'
    )
    code, out = _check(cfg)
    lines = cfg.read_text().splitlines()
    line = {key: lines.index(key) + 1 for key in ("pressure_gain = 0", "keep_refused = -1")}
    assert code == EX_CONFIG
    assert (
        f"{cfg}:{line['pressure_gain = 0']}: devices.nibp-1.pressure_gain: Input should be"
        " greater than 0" in out
    )
    assert f"{cfg}:{line['keep_refused = -1']}: devices.ora-1.keep_refused:" in out
    assert "simulation.devices.nibp-1.speed: Input should be greater than 0" in out
    ok = [
        "devices.nibp-1.kind=nibp",
        "devices.nibp-1.transport=serial:///dev/santebus/nibp",
        "devices.nibp-1.serial_number=NIBP-1",
        "devices.nibp-1.pressure_gain=0.0101",
        "devices.nibp-1.pressure_offset=-1.2",
        "simulation.devices.nibp-1.kind=nibp",
    ]
    assert _check(EXAMPLE, *(arg for s in ok for arg in ("--set", s))) == (0, "OK\n")
    config = load_config(EXAMPLE, ok)
    assert config.devices["nibp-1"].kind == "nibp"
    assert config.recordings_dir == config.gateway.state_dir / "recordings"

"""The systemd unit and udev rules as shipped: systemd's own checks, and what ops rely on.

``systemd-analyze verify`` parses the unit as systemd would (unknown keys, bad values and
missing executables are reported; it exits 0 even then, so any output fails the test) and
``systemd-analyze security --offline=true`` scores its sandboxing; issue #9 wants an exposure of
at most 2.0. The unit names its executable under /opt/santebus (where `make install` puts it);
the copy checked here points at this checkout's venv instead, the only change made to it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).parents[2] / "systemd"
UNIT = SYSTEMD / "santebus.service"
RULES = SYSTEMD / "99-santebus.rules"
MAX_EXPOSURE = 2.0


@pytest.fixture(scope="module")
def analyze() -> str:
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze missing: `make bootstrap` installs the systemd package"
    return tool


@pytest.fixture
def unit_here(tmp_path: Path) -> Path:
    santebus = Path(sys.executable).with_name("santebus")
    assert santebus.exists(), santebus
    text = UNIT.read_text().replace("/opt/santebus/.venv/bin/santebus", str(santebus))
    path = tmp_path / "santebus.service"  # the credentials path depends on this name
    path.write_text(text)
    return path


def test_systemd_analyze_verify_finds_nothing_to_say(analyze: str, unit_here: Path) -> None:
    done = subprocess.run(
        [analyze, "verify", str(unit_here)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done
    assert not (done.stdout + done.stderr).strip(), done


def test_verify_would_catch_a_broken_unit(analyze: str, unit_here: Path) -> None:
    # the check above can fail: a misspelt key and a bad value are reported
    unit_here.write_text(unit_here.read_text().replace("WatchdogSec=30", "WatchdogSecs=30"))
    done = subprocess.run(
        [analyze, "verify", str(unit_here)], capture_output=True, text=True, timeout=60, check=False
    )
    assert "Unknown key 'WatchdogSecs'" in done.stderr, done


def test_exposure_is_at_most_two(analyze: str, unit_here: Path) -> None:
    done = subprocess.run(
        [analyze, "security", "--offline=true", f"--threshold={int(MAX_EXPOSURE * 10)}",
         str(unit_here)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for santebus\.service: (\d+\.\d+)", done.stdout)
    assert found, done.stdout + done.stderr
    exposure = float(found.group(1))
    print(f"systemd-analyze security --offline=true: exposure {exposure}")
    assert exposure <= MAX_EXPOSURE, done.stdout
    assert done.returncode == 0, done.stdout


def _service() -> dict[str, list[str]]:
    body = UNIT.read_text().split("[Service]", 1)[1].split("[Install]", 1)[0]
    keys: dict[str, list[str]] = {}
    for line in body.splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            keys.setdefault(key, []).append(value)
    return keys


def test_the_unit_says_what_operations_rely_on() -> None:
    s = _service()
    assert s["Type"] == ["notify"]
    assert s["NotifyAccess"] == ["main"]
    assert s["WatchdogSec"] == ["30"]
    assert s["Restart"] == ["on-failure"]
    assert s["RestartPreventExitStatus"] == ["78"]
    assert s["User"] == ["santebus"]
    assert s["SupplementaryGroups"] == ["dialout"]
    assert s["StateDirectory"] == ["santebus"]
    assert s["LogsDirectory"] == ["santebus"]
    assert s["RuntimeDirectory"] == ["santebus"]  # status.sock
    assert {v.split(":", 1)[0] for v in s["LoadCredential"]} == {
        "mqtt-ca.pem", "mqtt-client.pem", "mqtt-client.key"
    }  # fmt: skip
    # the stop budget covers the daemon's own: 3 s of last words + 2 s to say offline
    assert int(s["TimeoutStopSec"][0]) >= 10


def test_udev_rules_give_stable_names_by_serial_number() -> None:
    rules = [
        line for line in RULES.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    assert rules
    for rule in rules:
        assert 'SUBSYSTEM=="tty"' in rule, rule
        assert re.search(r'ATTRS\{serial\}=="[^"]+"', rule), rule  # two adapters cannot swap
        assert re.search(r'SYMLINK\+="santebus/[a-z0-9-]+"', rule), rule
        assert 'GROUP="dialout"' in rule, rule
        assert 'MODE="0660"' in rule, rule

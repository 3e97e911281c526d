"""`make install` and `make uninstall` into a scratch root, as root (issue #9).

The scratch root holds what `useradd --root` needs and no more: etc/passwd, etc/group (root,
and dialout with gid 20 as on Debian), etc/shadow and etc/gshadow. useradd and userdel need no
login.defs; without one, userdel leaves the user's own group behind and uninstall.sh removes
it. With ROOT set the scripts never call systemctl or udevadm: outside the scratch root only
pip's cache and a temporary build directory are written.

The virtualenv and the pip install of the wheel are the slow part (about 20 s), so the module
installs once and the read-only checks share that tree; the last test re-installs, uninstalls
and purges it, so it stays last (pytest runs a module's tests in file order).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Variables of an enclosing `make test` (jobserver fds, a PURGE=1) must not reach the inner make.
_DROPPED_ENV = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "ROOT", "PURGE"}
NOBODY = 65534


@dataclass(frozen=True)
class Installed:
    root: Path
    output: str

    @property
    def venv(self) -> Path:
        return self.root / "opt/santebus/.venv"


def make(target: str, root: Path, *variables: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), target, f"ROOT={root}", *variables],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )


def run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=60, check=False)


def succeeded(done: subprocess.CompletedProcess[str]) -> str:
    """``done``'s stdout, after checking it exited 0."""
    assert done.returncode == 0, (
        f"{done.args} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    )
    return done.stdout


def minimal_root(root: Path) -> None:
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\ndialout:x:20:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\ndialout:*::\n")
    (etc / "shadow").chmod(0o640)
    (etc / "gshadow").chmod(0o640)


def entries(path: Path) -> dict[str, list[str]]:
    """The lines of a passwd-style file by their first field."""
    lines = [line.split(":") for line in path.read_text().splitlines() if line]
    return {fields[0]: fields for fields in lines}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    assert os.geteuid() == 0, "tests/test_install.py runs make install as root, as CI does"
    root = tmp_path_factory.mktemp("root")
    minimal_root(root)
    yield Installed(root, succeeded(make("install", root)))
    shutil.rmtree(root)  # ~300 MB of virtualenv if a test failed before the uninstall


def test_the_command_runs_from_its_own_venv_with_a_real_install(installed: Installed) -> None:
    santebus = installed.venv / "bin/santebus"
    assert "check-config" in succeeded(run(santebus, "--help"))
    assert "version = 3.11" in (installed.venv / "pyvenv.cfg").read_text()
    # Not editable: the code is in the venv's site-packages, nothing points back to the clone.
    python = installed.venv / "bin/python"
    where = succeeded(run(python, "-c", "import edge; print(edge.__file__)", cwd=installed.root))
    (site,) = (installed.venv / "lib").glob("python3.11/site-packages")
    assert Path(where.strip()).is_relative_to(site)
    assert not list(site.glob("__editable__*"))
    assert all(str(REPO) not in pth.read_text() for pth in site.glob("*.pth"))
    # Only the venv and the docs the unit's Documentation= names: not a copy of the git tree.
    opt = installed.root / "opt/santebus"
    assert sorted(p.name for p in opt.iterdir()) == [".venv", "docs"]
    assert (opt / "docs/operations.md").read_bytes() == (REPO / "docs/operations.md").read_bytes()


def test_check_config_accepts_the_installed_template(installed: Installed) -> None:
    config = installed.root / "etc/santebus/santebus.toml"
    template = REPO / "systemd/santebus.toml.example"
    # check-config does not open the TLS files the template names (they exist only in the unit).
    checked = run(installed.venv / "bin/santebus", "check-config", config)
    assert succeeded(checked).strip() == "OK"
    assert f"check-config {config}: OK" in installed.output
    assert config.read_bytes() == template.read_bytes()
    assert (config.parent / "santebus.toml.example").read_bytes() == template.read_bytes()
    santebus_gid = int(entries(installed.root / "etc/passwd")["santebus"][3])
    assert (mode(config), config.stat().st_uid, config.stat().st_gid) == (0o640, 0, santebus_gid)


def test_the_unit_and_the_udev_rules_are_in_place(installed: Installed) -> None:
    installed_files = {
        "etc/systemd/system/santebus.service": "systemd/santebus.service",
        "etc/udev/rules.d/99-santebus.rules": "systemd/99-santebus.rules",
        "etc/santebus/99-santebus.rules.example": "systemd/99-santebus.rules",
    }
    for there, shipped in installed_files.items():
        path = installed.root / there
        assert path.read_bytes() == (REPO / shipped).read_bytes(), there
        assert mode(path) == 0o644, there


def test_santebus_is_a_system_user_without_login_in_dialout(installed: Installed) -> None:
    etc = installed.root / "etc"
    name, _, uid, gid, _, home, shell = entries(etc / "passwd")["santebus"]
    assert int(uid) < 1000  # the system range
    assert (home, shell) == ("/var/lib/santebus", "/usr/sbin/nologin")
    groups = entries(etc / "group")
    assert groups["santebus"][2] == gid
    assert groups["dialout"][2] == "20"
    assert name in groups["dialout"][3].split(",")
    assert entries(etc / "shadow")["santebus"][1].startswith(("!", "*"))  # no password


def test_directories_have_their_owners_and_modes(installed: Installed) -> None:
    root = installed.root
    _, _, uid, gid, *_ = entries(root / "etc/passwd")["santebus"]
    expected = {
        "etc/santebus": (0o750, 0, int(gid)),
        "etc/santebus/credentials": (0o700, 0, 0),
        "var/lib/santebus": (0o750, int(uid), int(gid)),
        "opt/santebus": (0o755, 0, 0),
    }
    for path, want in expected.items():
        st = (root / path).stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == want, path


def test_install_says_what_it_skipped_and_what_comes_next(installed: Installed) -> None:
    assert "skipped systemctl daemon-reload and udevadm control --reload" in installed.output
    assert "/etc/santebus/credentials/mqtt-client.key" in installed.output
    assert "systemctl enable --now santebus" in installed.output


def test_reinstall_keeps_operator_files_and_uninstall_keeps_data_until_purge(
    installed: Installed,
) -> None:
    root = installed.root
    config = root / "etc/santebus/santebus.toml"
    rules = root / "etc/udev/rules.d/99-santebus.rules"
    config.write_text(config.read_text() + "# operator's marker\n")
    edited_rules = rules.read_text().replace("REPLACE-ME-SERIAL", "FT4ZK1QX", 1)
    rules.write_text(edited_rules)

    # A santebus user made by hand (the old manual install) is not in dialout: install adds it.
    for table in ("group", "gshadow"):
        path = root / "etc" / table
        path.write_text(path.read_text().replace(":santebus\n", ":\n"))
    assert entries(root / "etc/group")["dialout"][3] == ""

    again = succeeded(make("install", root))
    assert "adding user santebus to group dialout" in again
    assert entries(root / "etc/group")["dialout"][3] == "santebus"
    assert "kept the existing config" in again
    assert "kept your edited" in again
    assert config.read_text().endswith("# operator's marker\n")
    assert rules.read_text() == edited_rules

    outbox = root / "var/lib/santebus/outbox.sqlite"
    outbox.write_bytes(b"readings the backend has not confirmed yet")
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir()
    (wants / "santebus.service").symlink_to("/etc/systemd/system/santebus.service")

    removed = succeeded(make("uninstall", root))
    assert not (root / "opt/santebus").exists()
    assert not (root / "etc/systemd/system/santebus.service").exists()
    assert not (wants / "santebus.service").is_symlink()
    assert not rules.exists()
    for table in ("passwd", "shadow", "group", "gshadow"):
        assert "santebus" not in entries(root / "etc" / table), table
    assert entries(root / "etc/group")["dialout"] == ["dialout", "x", "20", ""]
    assert config.read_text().endswith("# operator's marker\n")
    assert (root / "etc/santebus/99-santebus.rules.saved").read_text() == edited_rules
    assert outbox.read_bytes() == b"readings the backend has not confirmed yet"
    assert f"kept {root}/var/lib/santebus" in removed
    assert f"kept {root}/etc/santebus" in removed
    assert "PURGE=1" in removed

    assert "already gone" in succeeded(make("uninstall", root))  # idempotent

    succeeded(make("uninstall", root, "PURGE=1"))
    assert not (root / "etc/santebus").exists()
    assert not (root / "var/lib/santebus").exists()
    assert sorted(entries(root / "etc/passwd")) == ["root"]
    succeeded(make("uninstall", root, "PURGE=1"))


def test_install_refuses_to_run_without_root(tmp_path: Path) -> None:
    minimal_root(tmp_path)
    # The clone and tmp_path may sit in directories only root can enter: nobody runs a copy of
    # the script from a world-readable one (the root check comes before anything else).
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="sbinst") as scratch:
        Path(scratch).chmod(0o755)
        script = shutil.copy(REPO / "systemd/install.sh", scratch)
        shutil.copy(REPO / "systemd/common.sh", scratch)  # sourced by install.sh
        as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        done = run(*as_nobody, "env", f"ROOT={tmp_path}", "bash", script, cwd=Path(scratch))
    assert done.returncode != 0
    assert "santebus install: error: must run as root" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["etc"]


def test_install_names_a_missing_python_before_changing_anything(tmp_path: Path) -> None:
    minimal_root(tmp_path)
    done = make("install", tmp_path, "PY=/nonexistent/python3.11")
    assert done.returncode != 0
    assert "python3.11 not found (PY=/nonexistent/python3.11)" in done.stderr
    assert "apt-get install python3.11 python3.11-venv" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["etc"]
    assert sorted(entries(tmp_path / "etc/passwd")) == ["root"]

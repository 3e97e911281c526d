#!/usr/bin/env bash
# Install the system packages santebus-edge needs (Debian 12 / Raspberry Pi OS), if missing.
set -euo pipefail

need=()
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
    need+=(mosquitto)
fi
# systemd-analyze checks the unit file in `make test` (verify, security --offline); installing
# the package in a container does not make systemd PID 1.
if ! command -v systemd-analyze >/dev/null 2>&1; then
    need+=(systemd)
fi
# useradd/userdel (passwd) for the install test's clean root
if ! command -v useradd >/dev/null 2>&1; then
    need+=(passwd)
fi
PY="$(command -v python3.11 || command -v python3 || true)"
if [ -z "$PY" ] || ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    need+=(python3 python3-venv)
fi
[ "${#need[@]}" -eq 0 ] && exit 0

echo "santebus: installing system packages: ${need[*]}" >&2
if ! command -v apt-get >/dev/null 2>&1; then
    echo "santebus: cannot install ${need[*]}: this machine has no apt-get." >&2
    echo "santebus: install them with your package manager, then run make again." >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo"
    else
        echo "santebus: need root to install ${need[*]}. Run:" >&2
        echo "    sudo apt-get update && sudo apt-get install -y ${need[*]}" >&2
        exit 1
    fi
fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need[@]}"

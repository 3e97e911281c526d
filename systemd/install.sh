#!/usr/bin/env bash
# Install santebus-edge as a system service: `sudo make install` (see docs/install.md).
#
#   $ROOT/opt/santebus/.venv           its own virtualenv, the package installed from a wheel
#   $ROOT/opt/santebus/docs            the operator documentation (the unit's Documentation=)
#   user santebus                      system account, no login shell, in group dialout
#   $ROOT/etc/systemd/system/santebus.service
#   $ROOT/etc/udev/rules.d/99-santebus.rules          kept if the operator edited it
#   $ROOT/etc/santebus/santebus.toml                  only if absent (never overwritten)
#   $ROOT/etc/santebus/santebus.toml.example          always (the shipped template)
#   $ROOT/etc/santebus/99-santebus.rules.example      always (the shipped udev rules)
#   $ROOT/etc/santebus/credentials/                   0700 root: the TLS files go here
#   $ROOT/var/lib/santebus                            state dir (the outbox), 0750 santebus
#
# Environment: ROOT (default empty: the running system), PY (Python 3.11; default python3.11).
# Idempotent: run it again to upgrade; the config, edited udev rules and the outbox stay.
set -euo pipefail
umask 022   # the santebus user must be able to read the code, whatever sudo's umask is

SANTEBUS_STEP=install
# shellcheck source=systemd/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# --- preconditions: nothing is changed before all of them hold ---------------------------------
check_root "it creates a system user and writes /etc, /opt"
for f in passwd group shadow gshadow; do
    [ -f "$ROOT/etc/$f" ] || die "$ROOT/etc/$f is missing: useradd needs passwd, group, shadow and gshadow in $ROOT/etc"
done
refuse_clone_inside_opt "the install directory (the old manual install)" \
    " (docs/install.md, 'Moving from a clone in /opt/santebus')"
grep -q '^dialout:' "$ROOT/etc/group" \
    || die "no group 'dialout' in $ROOT/etc/group (Debian has it, gid 20: it owns the serial ports)"

PY="${PY:-}"
[ -n "$PY" ] || PY="$(command -v python3.11 || true)"
if [ -z "$PY" ] || ! command -v "$PY" >/dev/null 2>&1; then
    die "python3.11 not found${PY:+ (PY=$PY)}. On Debian 12 / Raspberry Pi OS: sudo apt-get install python3.11 python3.11-venv"
fi
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || die "santebus-edge needs Python 3.11; $PY is $("$PY" -c 'import sys; print(sys.version.split()[0])'). Install python3.11 python3.11-venv, or pass PY=/path/to/python3.11"
"$PY" -c 'import venv, ensurepip' >/dev/null 2>&1 \
    || die "$PY cannot create a virtualenv (no ensurepip). On Debian: sudo apt-get install python3.11-venv"

OPT="$ROOT/opt/santebus"
VENV="$OPT/.venv"
ETC="$ROOT/etc/santebus"
STATE="$ROOT/var/lib/santebus"
UNIT="$ROOT/etc/systemd/system/santebus.service"
RULES="$ROOT/etc/udev/rules.d/99-santebus.rules"
root_opt=()
[ -z "$ROOT" ] || root_opt=(--root "$ROOT")
if [ -z "$ROOT" ]; then say "installing into the running system"; else say "installing into ROOT=$ROOT"; fi

# --- the system user ----------------------------------------------------------------------------
field() { awk -F: -v n="$2" -v k="$3" '$1 == n { print $k }' "$1"; }
member() {  # member GROUP USER: is USER listed in GROUP's line of $ROOT/etc/group
    awk -F: -v g="$1" -v u="$2" '$1 == g { n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) found = 1 }
        END { exit !found }' "$ROOT/etc/group"
}
if [ -n "$(field "$ROOT/etc/passwd" santebus 1)" ]; then
    say "user santebus exists (uid $(field "$ROOT/etc/passwd" santebus 3))"
else
    say "creating system user santebus (home /var/lib/santebus, shell /usr/sbin/nologin, group dialout)"
    useradd "${root_opt[@]}" --system --user-group --home-dir /var/lib/santebus --no-create-home \
        --shell /usr/sbin/nologin --groups dialout --comment "santebus-edge gateway" santebus
fi
if ! member dialout santebus; then
    say "adding user santebus to group dialout"
    usermod "${root_opt[@]}" --append --groups dialout santebus
fi
# Numeric ids: with ROOT set, the names mean nothing to chown on this system.
SB_UID="$(field "$ROOT/etc/passwd" santebus 3)"
SB_GID="$(field "$ROOT/etc/passwd" santebus 4)"

# --- the code: a wheel built from a scratch copy, installed into /opt/santebus/.venv ------------
install -d -m 0755 -o 0 -g 0 "$OPT"
if "$VENV/bin/python" -m pip --version >/dev/null 2>&1 \
    && "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    say "reusing the virtualenv $VENV"
else
    say "creating the virtualenv $VENV with $PY"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
fi
# The wheel is built from a copy so the build leaves nothing root-owned (build/, *.egg-info) in
# the operator's clone; the copy leaves out the dev venv, git and caches.
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/src"
tar -C "$REPO" -cf - \
    --exclude=./.git --exclude=./.venv --exclude=./.demo --exclude=./build \
    --exclude='./*.egg-info' --exclude=./.mypy_cache --exclude=./.ruff_cache \
    --exclude=./.pytest_cache --exclude=./.hypothesis --exclude=./.import_linter_cache \
    --exclude=__pycache__ . | tar -C "$WORK/src" -xf -
pip=("$VENV/bin/python" -m pip --quiet --disable-pip-version-check)
say "building the santebus-edge wheel"
"${pip[@]}" wheel --no-deps --wheel-dir "$WORK/dist" "$WORK/src"
wheel=("$WORK"/dist/santebus_edge-*.whl)
if [ "${#wheel[@]}" -ne 1 ] || [ ! -f "${wheel[0]}" ]; then
    die "pip wheel did not make one santebus_edge wheel in $WORK/dist"
fi
say "installing ${wheel[0]##*/} and its pinned dependencies into $VENV"
"${pip[@]}" install --root-user-action=ignore "${wheel[0]}"
# pip keeps an installed copy of the same version: a re-run must install the code as it is now.
"${pip[@]}" install --root-user-action=ignore --force-reinstall --no-deps "${wheel[0]}"
"$VENV/bin/santebus" --version >/dev/null || die "the installed $VENV/bin/santebus does not run"
say "installed $VENV/bin/santebus"
rm -rf "$OPT/docs"
cp -R "$REPO/docs" "$OPT/docs"
say "copied the documentation to $OPT/docs"

# --- config, credentials, state -----------------------------------------------------------------
install -d -m 0750 -o 0 -g "$SB_GID" "$ETC"
install -m 0644 -o 0 -g 0 "$REPO/systemd/santebus.toml.example" "$ETC/santebus.toml.example"
if [ -e "$ETC/santebus.toml" ]; then
    chgrp "$SB_GID" "$ETC/santebus.toml"   # a re-created user may have a new gid
    say "kept the existing config $ETC/santebus.toml (the template is $ETC/santebus.toml.example)"
else
    install -m 0640 -o 0 -g "$SB_GID" "$REPO/systemd/santebus.toml.example" "$ETC/santebus.toml"
    say "installed the config template as $ETC/santebus.toml: edit it"
fi
install -d -m 0700 -o 0 -g 0 "$ETC/credentials"
say "credentials directory $ETC/credentials (0700 root)"
if [ -d "$STATE" ]; then
    if [ "$(stat -c %u "$STATE")" != "$SB_UID" ]; then
        # Left by an uninstall, whose santebus user had another uid (systemd's StateDirectory=
        # would do the same at start; this also lets `sudo -u santebus santebus outbox` read it).
        chown -R "$SB_UID:$SB_GID" "$STATE"
        say "kept the state directory $STATE (the outbox), given to the new santebus user"
    else
        say "kept the state directory $STATE (the outbox)"
    fi
else
    install -d -m 0750 -o "$SB_UID" -g "$SB_GID" "$STATE"
    say "created the state directory $STATE (0750 santebus)"
fi
if [ -d "$ROOT/var/log/santebus" ] && [ "$(stat -c %u "$ROOT/var/log/santebus")" != "$SB_UID" ]; then
    chown -R "$SB_UID:$SB_GID" "$ROOT/var/log/santebus"
    say "kept $ROOT/var/log/santebus, given to the new santebus user"
fi

# --- unit and udev rules ------------------------------------------------------------------------
install -d -m 0755 "$ROOT/etc/systemd/system"
install -m 0644 -o 0 -g 0 "$REPO/systemd/santebus.service" "$UNIT"
say "installed $UNIT"
# The rules carry the adapters' serial numbers: an edited file is the operator's, like a config.
# It is replaced only while it is the template a previous install put there.
install -d -m 0755 "$ROOT/etc/udev/rules.d"
NEW_RULES="$REPO/systemd/99-santebus.rules"
if [ ! -e "$RULES" ]; then
    install -m 0644 -o 0 -g 0 "$NEW_RULES" "$RULES"
    say "installed $RULES: put your adapters' vendor, product and serial numbers in it"
elif cmp -s "$NEW_RULES" "$RULES"; then
    say "$RULES is up to date"
elif [ -e "$ETC/99-santebus.rules.example" ] && cmp -s "$ETC/99-santebus.rules.example" "$RULES"; then
    install -m 0644 -o 0 -g 0 "$NEW_RULES" "$RULES"
    say "updated $RULES (it was the unedited template)"
else
    say "kept your edited $RULES; compare it with the shipped $ETC/99-santebus.rules.example (diff -u)"
fi
install -m 0644 -o 0 -g 0 "$NEW_RULES" "$ETC/99-santebus.rules.example"

# --- check the config with the installed code ---------------------------------------------------
if out="$("$VENV/bin/santebus" check-config "$ETC/santebus.toml" 2>&1)"; then
    say "santebus check-config $ETC/santebus.toml: $out"
else
    say "WARNING: santebus check-config $ETC/santebus.toml found faults; the service will not start until they are fixed:"
    printf '%s\n' "$out"
fi

# --- systemd and udev ---------------------------------------------------------------------------
if [ -n "$ROOT" ]; then
    say "skipped systemctl daemon-reload and udevadm control --reload: ROOT=$ROOT is not the running system"
elif [ ! -d /run/systemd/system ]; then
    say "skipped systemctl daemon-reload and udevadm control --reload: systemd is not running here"
else
    say "systemctl daemon-reload"
    systemctl daemon-reload
    say "udevadm control --reload"
    udevadm control --reload
    if systemctl is-active --quiet santebus.service; then
        say "santebus.service is running the previous code until: sudo systemctl restart santebus"
    fi
fi

cat <<EOF
santebus install: done. Next steps (docs/install.md, /opt/santebus/docs/operations.md):
  1. TLS files, root-only (the unit loads them with LoadCredential=):
       sudo install -m 0600 ca.pem  /etc/santebus/credentials/mqtt-ca.pem
       sudo install -m 0600 bus.pem /etc/santebus/credentials/mqtt-client.pem
       sudo install -m 0600 bus.key /etc/santebus/credentials/mqtt-client.key
  2. Edit /etc/santebus/santebus.toml (bus_id, mqtt.host, devices), then check it:
       /opt/santebus/.venv/bin/santebus check-config /etc/santebus/santebus.toml
  3. Put the adapters' serial numbers in /etc/udev/rules.d/99-santebus.rules, then:
       sudo udevadm control --reload && sudo udevadm trigger --subsystem-match=tty
  4. sudo systemctl enable --now santebus
EOF

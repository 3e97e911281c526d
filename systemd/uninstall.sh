#!/usr/bin/env bash
# Remove what systemd/install.sh installed: `sudo make uninstall [PURGE=1]` (docs/install.md).
#
# Removes: the service (stopped and disabled first when systemd runs), its unit file, the udev
# rules, /opt/santebus and the user santebus (with its group).
# Keeps, unless PURGE=1: /etc/santebus (config, TLS credentials) and /var/lib/santebus (the
# outbox: readings the backend has not confirmed yet may still be in it), /var/log/santebus.
#
# Environment: ROOT (default empty: the running system), PURGE (1: delete the kept data too).
# Idempotent: what is already gone is skipped.
set -euo pipefail

SANTEBUS_STEP=uninstall
# shellcheck source=systemd/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PURGE="${PURGE:-}"

check_root "it removes a system user and files in /etc, /opt"
refuse_clone_inside_opt "the directory uninstall deletes,"

OPT="$ROOT/opt/santebus"
ETC="$ROOT/etc/santebus"
STATE="$ROOT/var/lib/santebus"
LOGS="$ROOT/var/log/santebus"
UNIT="$ROOT/etc/systemd/system/santebus.service"
RULES="$ROOT/etc/udev/rules.d/99-santebus.rules"
root_opt=()
[ -z "$ROOT" ] || root_opt=(--root "$ROOT")
live=0   # 1: the running system with systemd
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then live=1; fi
if [ -z "$ROOT" ]; then say "uninstalling from the running system"; else say "uninstalling from ROOT=$ROOT"; fi

# --- the service --------------------------------------------------------------------------------
if [ "$live" -eq 1 ]; then
    if [ -n "$(systemctl list-unit-files --no-legend santebus.service 2>/dev/null)" ]; then
        say "systemctl disable --now santebus (stops the daemon: its outbox is closed cleanly)"
        systemctl disable --now santebus.service
    else
        say "no santebus.service known to systemd"
    fi
elif [ -z "$ROOT" ]; then
    say "skipped stopping santebus.service: systemd is not running here"
else
    say "skipped stopping santebus.service: ROOT=$ROOT is not the running system"
fi
# What `systemctl enable` linked (WantedBy=), also when systemd does not run.
if [ -d "$ROOT/etc/systemd/system" ]; then
    while IFS= read -r -d '' link; do
        rm -f "$link"
        say "removed ${link}"
    done < <(find "$ROOT/etc/systemd/system" -mindepth 2 -maxdepth 2 -type l \
        -name santebus.service -print0)
fi
if [ -e "$UNIT" ]; then
    rm -f "$UNIT"
    say "removed $UNIT"
else
    say "$UNIT already gone"
fi
if [ -d "$UNIT.d" ]; then
    if [ "$PURGE" = 1 ]; then
        rm -rf "$UNIT.d"
        say "removed the drop-ins $UNIT.d"
    else
        say "kept the drop-ins $UNIT.d (PURGE=1 removes them)"
    fi
fi
if [ "$live" -eq 1 ]; then
    systemctl daemon-reload
    systemctl reset-failed santebus.service 2>/dev/null || true   # fails when nothing failed
fi

# --- udev rules ---------------------------------------------------------------------------------
if [ -e "$RULES" ]; then
    # The operator's serial numbers are worth keeping along with the config.
    if [ "$PURGE" != 1 ] && [ -d "$ETC" ] && ! cmp -s "$RULES" "$REPO/systemd/99-santebus.rules"; then
        cp -p "$RULES" "$ETC/99-santebus.rules.saved"
        say "saved your edited udev rules as $ETC/99-santebus.rules.saved"
    fi
    rm -f "$RULES"
    say "removed $RULES"
    if [ "$live" -eq 1 ]; then udevadm control --reload; fi
else
    say "$RULES already gone"
fi

# --- the code -----------------------------------------------------------------------------------
if [ -e "$OPT" ]; then
    rm -rf "$OPT"
    say "removed $OPT (code, virtualenv, docs)"
else
    say "$OPT already gone"
fi

# --- the user -----------------------------------------------------------------------------------
if grep -q '^santebus:' "$ROOT/etc/passwd" 2>/dev/null; then
    userdel "${root_opt[@]}" santebus \
        || die "userdel santebus failed (a process still running as santebus? see: ps -u santebus)"
    say "removed user santebus"
else
    say "user santebus already gone"
fi
# userdel removes the user's own group only with USERGROUPS_ENAB yes in login.defs (Debian's).
if grep -q '^santebus:' "$ROOT/etc/group" 2>/dev/null; then
    groupdel "${root_opt[@]}" santebus
    say "removed group santebus"
fi

# --- data ---------------------------------------------------------------------------------------
if [ "$PURGE" = 1 ]; then
    for d in "$ETC" "$STATE" "$LOGS"; do
        if [ -e "$d" ]; then
            rm -rf "$d"
            say "PURGE=1: removed $d"
        fi
    done
else
    kept=0
    if [ -e "$ETC" ]; then
        say "kept $ETC (config, TLS credentials)"
        kept=1
    fi
    if [ -e "$STATE" ]; then
        say "kept $STATE: the outbox may still hold readings the backend has not confirmed"
        kept=1
    fi
    if [ -e "$LOGS" ]; then
        say "kept $LOGS"
        kept=1
    fi
    if [ "$kept" -eq 1 ]; then
        # A later system account could be given the deleted user's uid: it must not inherit
        # the outbox (patients' readings). A later make install gives them back to santebus.
        for d in "$ETC" "$STATE" "$LOGS"; do
            [ -e "$d" ] && chown -R root:root "$d"
        done
        say "their files now belong to root; a later make install gives them to the new santebus user"
        say "to delete them too: sudo make uninstall PURGE=1"
    fi
fi
say "done"

# Shared by systemd/install.sh and systemd/uninstall.sh (sourced, not run): messages, the
# repository path, and ROOT checked and normalised before anything is changed.
# Expects SANTEBUS_STEP ("install" or "uninstall") and ROOT (empty: the running system).
# shellcheck shell=bash

say() { printf 'santebus %s: %s\n' "$SANTEBUS_STEP" "$*"; }
die() {
    printf 'santebus %s: error: %s\n' "$SANTEBUS_STEP" "$*" >&2
    exit 1
}

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
ROOT="${ROOT:-}"
ROOT="${ROOT%/}"   # ROOT=/ is the running system

# check_root WHY: must run as root; ROOT, if set, an existing absolute directory
check_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root ($1): sudo make $SANTEBUS_STEP"
    if [ -n "$ROOT" ]; then
        case "$ROOT" in
            /*) ;;
            *) die "ROOT must be an absolute path, got '$ROOT'" ;;
        esac
        [ -d "$ROOT" ] || die "ROOT=$ROOT is not a directory"
        # //, /. or /tmp/.. name the running system: they must not pass for a scratch root
        ROOT="$(realpath -e "$ROOT")"
        if [ "$ROOT" = / ]; then ROOT=""; fi
    fi
}

# refuse_clone_inside_opt WHY: this clone must not live in the directory the step replaces
refuse_clone_inside_opt() {
    case "$REPO/" in
        "$(realpath -m "$ROOT/opt/santebus")"/*)
            die "this clone is $REPO, inside $1 $ROOT/opt/santebus: clone the repository elsewhere and run make $SANTEBUS_STEP there${2:-}" ;;
    esac
}

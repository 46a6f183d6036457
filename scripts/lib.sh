# shellcheck shell=bash
# scripts/lib.sh: helpers shared by scripts/stack, scripts/test-stack and
# scripts/migrate. Sourced, not run; the caller sets `set -euo pipefail`.
#
# Defines TR_REPO (the repository root, symlinks resolved) and small
# message helpers that prefix every line with the script's name.

TR_REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd -P)
tr_prog=$(basename "$0")

say() { printf '%s: %s\n' "$tr_prog" "$*"; }
warn() { printf '%s: warning: %s\n' "$tr_prog" "$*" >&2; }
die() {
    printf '%s: error: %s\n' "$tr_prog" "$*" >&2
    exit 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# The service account: `taskrunner` when run as root (PostgreSQL refuses to
# run as root), else whoever runs the script.
tr_svc_user() {
    if is_root; then
        echo taskrunner
    else
        id -un
    fi
}

# The var dir for a profile: TR_VAR when set, else $TR_REPO/var (the
# `make run` stack). scripts/test-stack sets TR_VAR=$TR_REPO/var/test.
tr_default_var() { echo "${TR_VAR:-$TR_REPO/var}"; }

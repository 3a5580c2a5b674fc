#!/usr/bin/env bash
# Installs what the test suite needs beyond Go:
#   - Debian's prometheus package: prometheus and promtool 2.42, in PATH;
#   - Debian's prometheus-alertmanager (the demo's inhibition rules);
#   - Prometheus 3.x (prometheus and promtool) at the pinned version below,
#     built from the Go module proxy into a cache outside the repository,
#     ${XDG_CACHE_HOME:-$HOME/.cache}/umeeting-prom3/VERSION, so that only the
#     first run builds it (see docs/development.md).
#   - Debian's slapd package (OpenLDAP) for the directory tests, which start
#     their own slapd on 127.0.0.1 with a generated config (never the
#     system's service);
#   - systemd-analyze (Debian's systemd) to verify deploy/systemd's unit.
# The rule tests and the end-to-end tests run on both Prometheus versions.
#
#   scripts/test-deps.sh          install what is missing
#   scripts/test-deps.sh --dir    print the Prometheus 3.x folder and exit
set -euo pipefail

# Prometheus 3.16.0 (its Go module is versioned v0.3XX.Y for 3.XX.Y). Keep in
# step with mixin.Prometheus3Version (internal/mixin, checked by its test).
PROM3_VERSION=v0.316.0
PROM3_DIR="${UMEETING_PROM3_DIR:-${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/umeeting-prom3/$PROM3_VERSION}"

if [ "${1:-}" = "--dir" ]; then
	echo "$PROM3_DIR"
	exit 0
fi

missing=()
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
	missing+=(prometheus)
fi
if ! command -v prometheus-alertmanager >/dev/null && ! command -v alertmanager >/dev/null; then
	missing+=(prometheus-alertmanager) # the inhibition test of deploy/
fi
if ! command -v slapd >/dev/null && [ ! -x /usr/sbin/slapd ]; then
	missing+=(slapd) # the directory tests start their own slapd
fi
if ! command -v systemd-analyze >/dev/null; then
	missing+=(systemd) # go test ./deploy/ verifies the systemd unit
fi
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing: run 'sudo apt-get install ${missing[*]}' (Debian) first" >&2
		exit 1
	fi
	echo "Installing Debian's ${missing[*]} for the tests..." >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

have_prom3() { [ -x "$PROM3_DIR/prometheus" ] && [ -x "$PROM3_DIR/promtool" ]; }
have_prom3 && exit 0

# One build at a time (two test runs started together), into a temporary
# folder, moved in place when complete: an interrupted build leaves nothing
# that looks finished.
# The lock file names its holder, so that a run that has to wait says at
# once for whom (a build takes minutes).
mkdir -p "$PROM3_DIR"
lock="$PROM3_DIR/.lock"
exec 9<>"$lock"
if ! flock -n 9; then
	holder=$(cat "$lock" 2>/dev/null || true)
	echo "Waiting for another Prometheus $PROM3_VERSION build to finish: ${holder:-holder unknown} holds $lock..." >&2
	flock 9
	echo "The other build finished." >&2
fi
# Written in place: the lock belongs to the file's inode, which must stay.
echo "pid $$ (started by pid $PPID: $(tr '\0' ' ' </proc/$PPID/cmdline 2>/dev/null | cut -c1-120)) since $(date -u +%FT%TZ)" >"$lock"
have_prom3 && exit 0
echo "Building Prometheus $PROM3_VERSION (prometheus, promtool) into $PROM3_DIR;" \
	"the first build took 5 min 30 s on 2 cores (modules downloaded), later runs reuse it..." >&2
tmp=$(mktemp -d "$PROM3_DIR/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
GOBIN="$tmp" GOFLAGS= go install \
	"github.com/prometheus/prometheus/cmd/prometheus@$PROM3_VERSION" \
	"github.com/prometheus/prometheus/cmd/promtool@$PROM3_VERSION"
mv "$tmp/promtool" "$tmp/prometheus" "$PROM3_DIR/"
echo "Built Prometheus $PROM3_VERSION in $(($(date +%s) - start)) s." >&2

#!/usr/bin/env bash
# Installs what the test suite needs beyond Go: Debian's prometheus package
# (prometheus and promtool) for the rule tests and the end-to-end tests.
set -euo pipefail
if command -v promtool >/dev/null && command -v prometheus >/dev/null; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "promtool/prometheus missing: run 'sudo apt-get install prometheus' (Debian) first" >&2
	exit 1
fi
echo "Installing Debian's prometheus package (prometheus, promtool) for the tests..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null

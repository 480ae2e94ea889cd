#!/usr/bin/env bash
# Installs what the integration tests run for real: Prometheus and
# Alertmanager, and headless Chromium (the post-mortem page's rendering
# test), from Debian's packages. Tests that need them skip when they are
# missing, unless CORRELATOR_REQUIRE_PROMETHEUS=1 or
# CORRELATOR_REQUIRE_CHROMIUM=1 (CI sets both).
set -euo pipefail
need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi
if ! command -v apt-get >/dev/null; then
	echo "install-test-deps: no apt-get; install ${need[*]} yourself, or their tests skip" >&2
	exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null; then sudo="sudo"; else
		echo "install-test-deps: not root and no sudo; tests needing ${need[*]} will skip" >&2
		exit 0
	fi
fi
echo "install-test-deps: apt-get install ${need[*]}" >&2
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null ||
	{ $sudo apt-get update -q >/dev/null && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null; }
# The packages start their services; the tests run their own instances.
$sudo systemctl stop prometheus prometheus-alertmanager 2>/dev/null || true

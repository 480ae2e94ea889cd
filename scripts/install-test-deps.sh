#!/usr/bin/env bash
# Installs what the integration tests run for real: Prometheus and
# Alertmanager from Debian's packages. Tests that need them skip when they
# are missing, unless CORRELATOR_REQUIRE_PROMETHEUS=1 (CI sets it).
set -euo pipefail
if command -v prometheus >/dev/null && command -v prometheus-alertmanager >/dev/null; then
	exit 0
fi
if ! command -v apt-get >/dev/null; then
	echo "install-test-deps: no apt-get; install prometheus and prometheus-alertmanager yourself, or their tests skip" >&2
	exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null; then sudo="sudo"; else
		echo "install-test-deps: not root and no sudo; prometheus tests will skip" >&2
		exit 0
	fi
fi
echo "install-test-deps: apt-get install prometheus prometheus-alertmanager" >&2
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus prometheus-alertmanager >/dev/null ||
	{ $sudo apt-get update -q >/dev/null && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus prometheus-alertmanager >/dev/null; }
# The packages start their services; the tests run their own instances.
$sudo systemctl stop prometheus prometheus-alertmanager 2>/dev/null || true

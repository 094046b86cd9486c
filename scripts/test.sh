#!/usr/bin/env bash
# The whole test suite. On a fresh Debian machine it first installs the real
# peers the integration tests start (as root, with apt-get), then checks
# formatting and lints, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mbpoll >/dev/null 2>&1 || need+=(mbpoll)
command -v socat >/dev/null 2>&1 || need+=(socat)
[ -x /usr/bin/victoria-metrics ] || need+=(victoria-metrics)
[ -x /usr/bin/influxd ] || need+=(influxdb)
/usr/bin/python3 -c 'import pymodbus' >/dev/null 2>&1 || need+=(python3-pymodbus)
# pymodbus's server imports pyserial even for TCP; Debian only recommends it.
/usr/bin/python3 -c 'import serial, serial_asyncio' >/dev/null 2>&1 || need+=(python3-serial-asyncio)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
/usr/bin/python3 -c "import yaml" >/dev/null 2>&1 || need+=(python3-yaml)
# The reference Prometheus client's parser reads /metrics in a test.
/usr/bin/python3 -c "import prometheus_client" >/dev/null 2>&1 || need+=(python3-prometheus-client)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The settlement statement's PDF is checked with pdftotext; its Chinese
# labels need a CJK font, which Chromium does not bring.
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
fc-list :lang=zh 2>/dev/null | grep -q . || need+=(fonts-wqy-microhei)
# systemd-analyze verifies the shipped unit.
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# promtool checks and unit-tests the shipped alerting rules.
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# schemathesis (PyPI) goes into a virtualenv of Debian's Python.
/usr/bin/python3 -c "import ensurepip, venv" >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing test peers: ${need[*]}"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  # Package scripts may try to start services; the tests start their own on ephemeral ports.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# From PyPI, into a virtualenv of Debian's Python: schemathesis checks the live
# API against its OpenAPI document (tests/openapi.rs); pysunspec2, SunSpec's
# reference implementation, builds and reads SunSpec devices (tests/sunspec.rs).
schemathesis_version=4.32.5
pysunspec2_version=1.3.7
venv=target/test-venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$schemathesis_version" ||
  ! "$venv/bin/pip" show pysunspec2 2>/dev/null | grep -q "^Version: $pysunspec2_version$"; then
  echo "installing schemathesis $schemathesis_version and pysunspec2 $pysunspec2_version into $venv"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "schemathesis==$schemathesis_version" "pysunspec2==$pysunspec2_version"
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked "$@"

#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/ from the project's fixtures.

Run from the repository root after a fixture changes; the corpora are kept in
the repository so `cargo fuzz run` and the stable test suite start from them.
"""
import hashlib
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def put(target, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


for f in sorted((ROOT / "config" / "profiles").glob("*.toml")) + sorted(
    (ROOT / "tests" / "data" / "profiles").glob("*.toml")
):
    put("profile_file", f.read_bytes())
for f in sorted((ROOT / "config" / "tariffs").glob("*.toml")):
    put("tariff_file", f.read_bytes())
for f in sorted((ROOT / "config" / "examples").glob("*.toml")):
    put("config", f.read_bytes())
for f in sorted((ROOT / "tests" / "data" / "field").glob("*.csv")):
    # The first day of each case is enough to reach every column and state.
    put("replay_csv", b"\n".join(f.read_bytes().split(b"\n")[:400]) + b"\n")

# Modbus replies: profile index, request index, registers or bits, then the
# reply. Plausible registers, short replies, long replies, and all ones.
for p in range(5):
    for r in range(4):
        words = [0x0102 * (i + 1) & 0xFFFF for i in range(64)]
        put("modbus_reply", bytes([p, r, 0]) + b"".join(struct.pack(">H", w) for w in words))
        put("modbus_reply", bytes([p, r, 0]) + b"\x00\x01\x00")
        put("modbus_reply", bytes([p, r, 0]) + b"\xff" * 128)
        put("modbus_reply", bytes([p, r, 1]) + b"\xa5" * 8)

for at, key, payload in [
    (1_750_000_000_000, "bessmon/lab/pcs/state", b'{"soc":51.2}'),
    (0, "", b""),
    (-1, "bess_telemetry,site=lab", b"bess_telemetry,site=lab soc=51.2 1750000000000000000"),
]:
    k = key.encode()
    put("spool_record", struct.pack(">qI", at, len(k)) + k + payload)

for path in [
    "/api/v1/status",
    "/api/v1/sites",
    "/api/v1/sites/lab",
    "/api/v1/sites/lab/savings?period=lifetime",
    "/api/v1/sites/lab/savings?period=2026-03",
    "/api/v1/sites/lab/days?period=2026",
    "/api/v1/sites/lab/days?period=2026-03-15",
    "/api/v1/sites/lab/history",
    "/api/v1/sites/nowhere/savings?period=2026",
    "/metrics",
    "/healthz",
    "/readyz",
    "/",
]:
    put("http_api", b"\x00" + path.encode())
    put("http_api", b"\x01" + path.encode())

for p in ["lifetime", "2026", "2026-03", "2026-03-15", "9999-12-31", "0000", "-2026-01-01"]:
    put("period", p)

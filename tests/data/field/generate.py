#!/usr/bin/env python3
"""Writes the field-fault histories that tests/field_faults.rs replays.

Each file is what a site's devices would have reported on a day with one of
the faults every real site has; the true figures are in the test beside each
use. Run from this folder: python3 generate.py
"""


def write(name, header, rows):
    with open(name, "w", newline="\n") as f:
        f.write(",".join(["timestamp"] + header) + "\n")
        for ts, values in rows:
            f.write(",".join([ts] + ["" if v is None else f"{v:.6f}" for v in values]) + "\n")


def hm(day, m):
    return f"{day} {m // 60:02d}:{m % 60:02d}:00"


def outage(skip_valley):
    # Chongqing, Monday 2025-03-10 (no critical band in March). 250 kW charge
    # read every minute 00:00-07:00; no readings 07:00-12:00 while the battery
    # charged 250 kWh more before 08:00 and discharged 500 kWh 11:00-12:00;
    # read again 12:00-13:00 discharging 500 kW.
    rows = []
    for m in range(0, 7 * 60 + 1):
        if skip_valley and 120 < m < 300:
            continue
        rows.append((hm("2025-03-10", m), [-250.0, 10000 + 250 * m / 60, 5000.0]))
    for m in range(12 * 60, 13 * 60 + 1):
        rows.append((hm("2025-03-10", m), [500.0, 12000.0, 5500 + 500 * (m - 720) / 60]))
    return rows


HEADER_BATTERY = ["battery_power", "charge_energy_total", "discharge_energy_total"]
write("case1-outage.csv", HEADER_BATTERY, outage(False))
write("case1-outage-two-gaps.csv", HEADER_BATTERY, outage(True))


def idle_jump(jump_kwh):
    # An idle battery (power 0) whose discharge counter jumps at 01:00 and stays.
    rows = []
    for m in range(0, 3 * 60 + 1):
        rows.append((hm("2025-03-10", m), [0.0, 10000.0, 5000 + (jump_kwh if m >= 60 else 0)]))
    return rows


write("case2-idle-jump.csv", HEADER_BATTERY, idle_jump(100.0))
# 20 kWh in a minute is within what 1 MW allows (25 kWh): only power says it is not energy.
write("case2-idle-creep.csv", HEADER_BATTERY, idle_jump(20.0))


def large_site(with_grid_power):
    # A factory importing a steady 8 MW beside an idle 1 MW battery, 2025-07-15 10:00-12:00.
    rows = []
    for m in range(10 * 60, 12 * 60 + 1):
        imported = 200000 + 8000 * (m - 600) / 60
        values = [0.0, 10000.0, 5000.0, imported]
        if with_grid_power:
            values.append(8000.0)
        rows.append((hm("2025-07-15", m), values))
    return rows


write(
    "case3-large-site.csv",
    HEADER_BATTERY + ["grid_import_energy_total", "grid_power"],
    large_site(True),
)
write(
    "case3-large-site-no-power.csv",
    HEADER_BATTERY + ["grid_import_energy_total"],
    large_site(False),
)

# Berlin, Tuesday 2026-03-10: the battery discharges 1 MW 18:00-19:00 and the
# site has no grid measurement at all.
rows = []
for m in range(17 * 60 + 30, 19 * 60 + 31):
    on = 18 * 60 <= m < 19 * 60
    done = min(max(m - 18 * 60, 0), 60)
    rows.append((hm("2026-03-10", m), [1000.0 if on else 0.0, 100.0, 400 + 1000 * done / 60]))
write("case5-no-grid.csv", HEADER_BATTERY, rows)

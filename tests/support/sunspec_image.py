"""SunSpec's reference implementation (pysunspec2, from PyPI) on both sides of
bessmon's SunSpec test: it builds a device image from its own model
definitions, and it reads a live device with its own client.

Usage:
  sunspec_image.py build SPEC.json   prints a pymodbus_server.py map
      SPEC: {"unit": 1, "base": 40000,
             "models": [{"id": 1, "values": {"Mn": "ACME", ...}}, ...]}
      Points left out keep pysunspec2's "not implemented" value.
  sunspec_image.py read PORT UNIT    prints {"MODEL_ID": {"POINT": value}}
      for the first instance of every model, as pysunspec2's client scales
      them (cvalue: the value times 10^scale factor); null when not implemented.
"""
import json
import sys

import sunspec2.device as device
import sunspec2.modbus.client as client

MARKER = [0x5375, 0x6E53]


def build(spec):
    base = spec.get("base", 40000)
    words = list(MARKER)
    addr = base + 2
    for m in spec["models"]:
        mdef = device.get_model_def(m["id"])
        model = device.Model(model_id=m["id"], model_addr=addr, model_def=mdef)
        for name, value in m.get("values", {}).items():
            model.points[name].value = value
        data = model.get_mb()
        regs = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
        words += regs
        addr += len(regs)
    words += [0xFFFF, 0]
    return {"mode": "tcp", "units": {str(spec.get("unit", 1)): {"holding": {str(base): words}}}}


def read(port, unit):
    d = client.SunSpecModbusClientDeviceTCP(slave_id=unit, ipaddr="127.0.0.1", ipport=port, timeout=5)
    try:
        d.scan()
        out = {}
        for mid, instances in d.models.items():
            if not isinstance(mid, int):
                continue
            points = {}
            for name, p in instances[0].points.items():
                v = p.cvalue
                points[name] = v if v is None or isinstance(v, (int, float, str)) else str(v)
            out[str(mid)] = points
        return out
    finally:
        d.close()


def main():
    if sys.argv[1] == "build":
        with open(sys.argv[2]) as f:
            print(json.dumps(build(json.load(f))))
    elif sys.argv[1] == "read":
        print(json.dumps(read(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        sys.exit("usage: sunspec_image.py build SPEC.json | read PORT UNIT")


if __name__ == "__main__":
    main()

"""An independent Modbus peer for bessmon's integration tests (Debian's python3-pymodbus 3.x).

Usage: pymodbus_server.py MAP.json
MAP: {"mode": "tcp" | "rtu-over-tcp" | "rtu", "serial": "/dev/pts/N", "baud": 9600,
      "units": {"1": {"holding": {"0": [words...]}, "input": {...}, "coils": {"0": [0, 1]}, "discrete": {...}}}}
Units not in the map get no answer at all (a dead device behind a gateway).
Prints "port N" (TCP modes) or "ready" (serial) on stdout once it serves.
"""
import asyncio
import json
import sys

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.server.async_io import ModbusSerialServer, ModbusTcpServer
from pymodbus.transaction import ModbusRtuFramer, ModbusSocketFramer

SIZE = 0x200


def block(spec):
    # SunSpec devices sit at 40000 or 50000: the block reaches the highest word given.
    end = max([int(s, 0) + len(w) for s, w in (spec or {}).items()] + [SIZE])
    values = [0] * end
    for start, words in (spec or {}).items():
        a = int(start, 0)
        values[a : a + len(words)] = words
    return ModbusSequentialDataBlock(0, values)


def context(spec):
    slaves = {}
    for unit, tables in spec["units"].items():
        slaves[int(unit)] = ModbusSlaveContext(
            hr=block(tables.get("holding")),
            ir=block(tables.get("input")),
            co=block(tables.get("coils")),
            di=block(tables.get("discrete")),
            zero_mode=True,
        )
    return ModbusServerContext(slaves=slaves, single=False)


async def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    ctx = context(spec)
    mode = spec.get("mode", "tcp")
    if mode == "rtu":
        server = ModbusSerialServer(
            ctx,
            framer=ModbusRtuFramer,
            port=spec["serial"],
            baudrate=spec.get("baud", 9600),
            ignore_missing_slaves=True,
        )
        await server.start()
        print("ready", flush=True)
        await asyncio.Event().wait()
    framer = ModbusRtuFramer if mode == "rtu-over-tcp" else ModbusSocketFramer
    server = ModbusTcpServer(
        ctx, framer=framer, address=("127.0.0.1", 0), ignore_missing_slaves=True
    )
    task = asyncio.create_task(server.serve_forever())
    await server.serving
    print("port", server.server.sockets[0].getsockname()[1], flush=True)
    await task


asyncio.run(main())

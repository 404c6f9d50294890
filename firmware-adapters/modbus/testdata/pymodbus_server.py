#!/usr/bin/python3
"""A Modbus TCP server for the driver's integration tests, written for the
pymodbus 3.0 API that Debian 12 ships (python3-pymodbus 3.0.0rc1).

usage: pymodbus_server.py MODBUS_PORT CONTROL_PORT

It serves units 1 to 4 on 127.0.0.1:MODBUS_PORT, every table zero-based and
65536 entries long. On 127.0.0.1:CONTROL_PORT it accepts lines

    set UNIT TABLE ADDRESS VALUE     ->  ok
    get UNIT TABLE ADDRESS           ->  VALUE

with TABLE one of co (coils), di (discrete inputs), hr (holding registers),
ir (input registers), so that the test can change what the driver reads and
read back what it wrote. It prints "ready" once both ports listen.
"""

import asyncio
import logging
import sys

from pymodbus.datastore import (
    ModbusServerContext,
    ModbusSequentialDataBlock,
    ModbusSlaveContext,
)
from pymodbus.server.async_io import ModbusTcpServer

TABLES = {"co": 1, "di": 2, "hr": 3, "ir": 4}  # pymodbus getValues takes function codes


def make_context():
    slaves = {}
    for unit in range(1, 5):
        slaves[unit] = ModbusSlaveContext(
            di=ModbusSequentialDataBlock(0, [0] * 65536),
            co=ModbusSequentialDataBlock(0, [0] * 65536),
            hr=ModbusSequentialDataBlock(0, [0] * 65536),
            ir=ModbusSequentialDataBlock(0, [0] * 65536),
            zero_mode=True,
        )
    return ModbusServerContext(slaves=slaves, single=False)


async def control(context, reader, writer):
    while True:
        line = await reader.readline()
        if not line:
            break
        try:
            parts = line.decode().split()
            unit, table, addr = int(parts[1]), TABLES[parts[2]], int(parts[3])
            if parts[0] == "set":
                context[unit].setValues(table, addr, [int(parts[4])])
                answer = "ok"
            elif parts[0] == "get":
                answer = str(int(context[unit].getValues(table, addr, 1)[0]))
            else:
                answer = "error unknown command"
        except Exception as exc:  # pylint: disable=broad-except
            answer = "error " + str(exc).replace("\n", " ")
        writer.write((answer + "\n").encode())
        await writer.drain()
    writer.close()


async def main():
    port, control_port = int(sys.argv[1]), int(sys.argv[2])
    context = make_context()
    server = ModbusTcpServer(
        context, address=("127.0.0.1", port), allow_reuse_address=True
    )
    task = asyncio.create_task(server.serve_forever())
    await server.serving
    ctl = await asyncio.start_server(
        lambda r, w: control(context, r, w), "127.0.0.1", control_port
    )
    print("ready", flush=True)
    async with ctl:
        await asyncio.gather(task, ctl.serve_forever())


if __name__ == "__main__":
    logging.basicConfig(level=logging.CRITICAL)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    asyncio.run(main())

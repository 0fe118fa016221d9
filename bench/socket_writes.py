"""What one TCP write on loopback costs the writer on this machine: the floor under WebSocket
fan-out, which writes every client's frames of an interval in one write.

`python -m bench.socket_writes --connections 10000 --rounds 10 --size 1000` opens
`--connections` loopback connections to a receiver in another process (uvloop, reading and
dropping), then writes `--size` bytes to each of them `--rounds` times, a pause after each
round so that the receiver drains, and prints this process's user and system CPU per write.
On loopback the writer's system time also holds the receiving side's TCP processing, which
the kernel does in the sender's context: a gateway serving clients on other machines pays
less per write than one serving them from the same host, as the benchmarks here do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import socket
import time
from multiprocessing.connection import Connection

PAUSE_S = 0.05  # after each round: the receiver drains, so no write finds a full buffer


def receive(conn: Connection) -> None:
    """Accepts connections and drops what they send; its port goes back on `conn`."""
    import uvloop

    class Drop(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            pass

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Drop, "127.0.0.1", 0, backlog=4096)
        conn.send(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    uvloop.run(serve())


def measure(connections: int, rounds: int, size: int) -> dict[str, float]:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ours, theirs = multiprocessing.Pipe()
    receiver = multiprocessing.get_context("spawn").Process(target=receive, args=(theirs,))
    receiver.start()
    try:
        port = ours.recv()
        sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
        for s in sockets:
            s.setblocking(False)
        time.sleep(1.0)  # every connection accepted
        data = b"x" * size
        before = resource.getrusage(resource.RUSAGE_SELF)
        for _ in range(rounds):
            for s in sockets:
                s.send(data)
            time.sleep(PAUSE_S)
        after = resource.getrusage(resource.RUSAGE_SELF)
        writes = connections * rounds
        return {
            "writes": writes,
            "user_us_per_write": round((after.ru_utime - before.ru_utime) / writes * 1e6, 2),
            "system_us_per_write": round((after.ru_stime - before.ru_stime) / writes * 1e6, 2),
        }
    finally:
        receiver.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--size", type=int, default=1000, help="bytes per write")
    args = parser.parse_args()
    print(json.dumps(measure(args.connections, args.rounds, args.size)))


if __name__ == "__main__":
    main()

"""Test helper: a tiny real gRPC server with only the health service, run as a child process.

    python health_server.py PORT [--status NOT_SERVING] [--ignore-sigterm]

It reports the overall service ("") as SERVING, or NOT_SERVING to play a service that never
becomes ready; --ignore-sigterm plays one that hangs on shutdown.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


async def serve(port: int, status: str) -> None:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    await servicer.set("", health_pb2.HealthCheckResponse.ServingStatus.Value(status))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"health {status} on port {port}", flush=True)
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--status", default="SERVING", choices=["SERVING", "NOT_SERVING"])
    parser.add_argument("--ignore-sigterm", action="store_true")
    args = parser.parse_args()
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    asyncio.run(serve(args.port, args.status))


if __name__ == "__main__":
    main()

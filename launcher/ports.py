"""Free TCP ports on the loopback address, for servers started by tests and benchmarks."""

import socket


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it); another process could still
    take it before our server binds, which on one test machine does not happen in practice."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

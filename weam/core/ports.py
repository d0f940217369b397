"""A free TCP port on loopback: for a single-node rendezvous (MASTER_PORT), a throwaway MLflow server,
a test's Ray or server. The one copy (it was written five times)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on now (the OS picks it; another process may take it before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

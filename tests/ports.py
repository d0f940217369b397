"""Loopback ports for tests, free of collisions under pytest-xdist: each worker takes its ports from
its own range below Linux's ephemeral range (32768-60999), where neither another worker's port,
nor a ``bind(port 0)``, nor the local end of an outgoing connection can land."""

from __future__ import annotations

import itertools
import os
import random
import socket

FIRST, PER_WORKER = 20000, 2000
"""Worker gwN: ports FIRST + N*PER_WORKER up to the next worker's; without xdist, gw0's range."""
RESERVED = range(30000, 32000)
"""Ports held across a session by one test for another (the tiny study's down tracking server)."""


def _worker_ports() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker.removeprefix("gw")) if worker.removeprefix("gw").isdigit() else 0
    start = FIRST + (index % 5) * PER_WORKER
    return range(start, start + PER_WORKER)


_counter = itertools.count(random.randrange(PER_WORKER))


def bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def worker_port(ports: range | None = None) -> int:
    """The next port of this worker's range (or of ``ports``) that nothing is bound to; a port is
    not handed out twice in a row by one process until its range has gone round."""
    ports = ports or _worker_ports()
    for _ in range(len(ports)):
        port = ports[next(_counter) % len(ports)]
        if bindable(port):
            return port
    raise RuntimeError(f"no free loopback port in {ports.start}-{ports.stop - 1}")

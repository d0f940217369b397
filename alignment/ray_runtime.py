"""The one place that starts or joins Ray. Tasks run in another working directory: pass them
absolute paths or, as the aligner does, the data itself."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from pydantic import Field

from weam.core.config import StrictModel
from weam.core.errors import WeamError

MiB = 1024**2
CONNECT_TIMEOUT_SECONDS = 10.0


class RayLocalConfig(StrictModel):
    """A Ray started on this machine for one run (ignored when joining a cluster)."""

    num_cpus: int | None = Field(None, ge=1)
    """CPUs Ray may use; None = all of this machine's."""
    object_store_memory_mb: int | None = Field(None, ge=80)
    """Object store size in MiB; None = Ray's default (30% of memory). Tests use 128."""
    include_dashboard: bool = False
    """Start Ray's dashboard (off: it costs a second and a port)."""


def init_kwargs(address: str | None, local: RayLocalConfig) -> dict:
    """Keyword arguments for ray.init: join ``address`` or start a local Ray per ``local``."""
    kwargs: dict = {"log_to_driver": False, "configure_logging": False}
    if address is not None:
        return {**kwargs, "address": address}
    kwargs.update(address="local", num_cpus=local.num_cpus, include_dashboard=local.include_dashboard)
    if local.object_store_memory_mb is not None:
        kwargs["object_store_memory"] = local.object_store_memory_mb * MiB
    return kwargs


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_SECONDS) -> None:
    """Fail in seconds, with the reason, when nothing listens at a Ray address: ray.init itself
    retries a dead GCS address for minutes and a dead ``ray://`` one for 30 s, then gives a
    traceback. ``auto`` is left to Ray (it finds the local cluster or says there is none)."""
    if address == "auto" or "://" in address and not address.startswith("ray://"):
        return
    host_port = address.removeprefix("ray://").rstrip("/")
    host, _, port = host_port.rpartition(":")
    default = 10001 if address.startswith("ray://") else 6379
    if not host:
        host, port = host_port, str(default)
    try:
        number = int(port)
    except ValueError:
        raise WeamError(f"Ray address {address!r}: the port {port!r} is not a number; expected HOST:PORT "
                        "(the head's GCS, default 6379), ray://HOST:PORT (Ray Client, default 10001) or auto") from None
    try:
        with socket.create_connection((host.strip("[]"), number), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise WeamError(
            f"cannot reach the Ray cluster at {address}: {reason} (after at most {timeout:.0f} s). "
            "Is `ray start --head` running there, is the port open to this machine, and is it the GCS port "
            "(HOST:6379) or, with ray://, the Ray Client port (ray://HOST:10001)?"
        ) from None


@contextlib.contextmanager
def ray_session(address: str | None, local: RayLocalConfig) -> Iterator[None]:
    """Use the Ray already initialised in this process, else start/join one and shut it down after."""
    import ray

    if ray.is_initialized():
        yield
        return
    if address is not None:
        check_reachable(address)
    try:
        ray.init(**init_kwargs(address, local))
    except (ConnectionError, RuntimeError, TimeoutError, ValueError) as exc:
        raise WeamError(f"cannot join the Ray cluster at {address or 'a local Ray'}: {exc}") from None
    try:
        yield
    finally:
        ray.shutdown()

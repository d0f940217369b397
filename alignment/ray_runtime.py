"""The one place that starts or joins Ray. Tasks run in another working directory: pass them
absolute paths or, as the aligner does, the data itself."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

from pydantic import Field

from weam.core.config import StrictModel
from weam.core.errors import WeamError

MiB = 1024**2
LOOPBACK = "127.0.0.1"
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
    # A Ray started for one run serves this machine only: its node address is the loopback (no
    # other node can join it) and its token is private (private_ray_token).
    kwargs.update(address="local", num_cpus=local.num_cpus, include_dashboard=local.include_dashboard,
                  _node_ip_address=LOOPBACK)
    if local.object_store_memory_mb is not None:
        kwargs["object_store_memory"] = local.object_store_memory_mb * MiB
    return kwargs


def private_ray_token(environ: dict[str, str] | None = None) -> Path | None:
    """The token a local Ray (2.5x: token authentication on by default) checks on every request,
    readable by this user only (0600). Ray itself writes ``~/.ray/auth_token`` with the umask's mode
    (0644: anyone on the machine could read it and run code in the cluster), so weam writes it
    first, or tightens one already there. Its gcs_server and raylet still listen on every interface
    (Ray offers no setting to bind them to the loopback); the token is what guards them."""
    import secrets

    environ = os.environ if environ is None else environ
    if environ.get("RAY_AUTH_MODE", "").lower() == "disabled" or environ.get("RAY_AUTH_TOKEN"):
        return None
    path = Path(environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, 0o600)
        return path
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))  # what `ray get-auth-token --generate` writes
    return path


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


LOCAL_START_ATTEMPTS = 3


def init_ray(address: str | None, local: RayLocalConfig) -> None:
    """ray.init; a local Ray whose raylet did not register within Ray's fixed 30 s (a loaded
    machine: seen in a CI run while other work started) is shut down and started again, twice at most."""
    import ray

    for attempt in range(1, LOCAL_START_ATTEMPTS + 1):
        try:
            ray.init(**init_kwargs(address, local))
            return
        except Exception as exc:  # Ray raises a bare Exception for this
            if address is not None or "timed out during startup" not in str(exc) or attempt == LOCAL_START_ATTEMPTS:
                raise
            print(f"local Ray did not come up (attempt {attempt} of {LOCAL_START_ATTEMPTS}): {exc}; starting it again",
                  file=sys.stderr)
            ray.shutdown()


@contextlib.contextmanager
def ray_session(address: str | None, local: RayLocalConfig) -> Iterator[None]:
    """Use the Ray already initialised in this process, else start/join one and shut it down after."""
    import ray

    if ray.is_initialized():
        yield
        return
    if address is not None:
        check_reachable(address)
    else:
        private_ray_token()
    try:
        init_ray(address, local)
    except (ConnectionError, RuntimeError, TimeoutError, ValueError) as exc:
        raise WeamError(f"cannot join the Ray cluster at {address or 'a local Ray'}: {exc}") from None
    try:
        yield
    finally:
        ray.shutdown()

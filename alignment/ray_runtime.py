"""The one place that starts or joins Ray. Tasks run in another working directory: pass them
absolute paths or, as the aligner does, the data itself."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pydantic import Field

from weam.config import StrictModel

MiB = 1024**2


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


@contextlib.contextmanager
def ray_session(address: str | None, local: RayLocalConfig) -> Iterator[None]:
    """Use the Ray already initialised in this process, else start/join one and shut it down after."""
    import ray

    if ray.is_initialized():
        yield
        return
    ray.init(**init_kwargs(address, local))
    try:
        yield
    finally:
        ray.shutdown()

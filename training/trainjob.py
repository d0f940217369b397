"""A pre-training run that needs more than one process, launched by the study's Ray driver as a
Kubeflow Trainer v2 TrainJob (``trainer.kubeflow.org/v1alpha1``) through the Kubernetes API.

One Ray task is one process on one GPU (weam.study.ray_run); a run whose config asks for more
(``parallel.nodes`` × ``parallel.gpus_per_node`` > 1) is started as the TrainJob that
``kubectl apply -k deploy/kustomize/trainjob`` applies by hand (k8s/trainer/trainjob.yaml, the
template read here; its runtime ``weam-deepspeed`` in k8s/trainer/runtime.yaml runs
``torchrun -m weam.cli pretrain run``), with what the step's config decides filled in:

- ``metadata.name``: ``weam-<step key>-<hash of the step's resolved config>`` (an RFC 1035 label):
  a re-submitted study finds the TrainJob of the same config and waits for it instead of starting
  a second one; another config gets another name;
- ``spec.trainer.numNodes``/``numProcPerNode`` and the GPUs of ``resourcesPerNode``;
- ``spec.trainer.args``: ``--config`` on the step's config, written by the driver to the study's
  shared work directory (``<work>/.trainjobs/<name>.yaml``; every pod mounts it at the same path),
  with the MLflow run name, tags and experiment of the step as the Ray path logs them;
- ``spec.trainer.env``: WEAM_PARENT_RUN_ID, the condition's MLflow run (the same parent as locally).

The driver polls the TrainJob's status conditions (``Complete``, ``Failed``, ``Suspended``, as
kubeflow/trainer's API declares them) and prints a line when they or its jobs' counts change, and
every ``report_every`` seconds otherwise. ``Complete`` is not taken on trust: the step is done when
its manifest on the work directory says so (:func:`weam.stages.verdict`), as for any other step.
``Failed`` raises, which fails that step only.

Authentication: in the head pod, the ServiceAccount ``weam-study-driver``'s token, projected at the
in-cluster path (k8s/study/rbac.yaml: a Role that can create, get, list, watch and delete
``trainjobs.trainer.kubeflow.org`` in namespace ``weam`` and nothing else); outside a cluster, the
kubeconfig's current context.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from weam.core.config import dump_config
from weam.core.errors import WeamError

GROUP = "trainer.kubeflow.org"
VERSION = "v1alpha1"
PLURAL = "trainjobs"
NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_NAMESPACE = "weam"
CONFIG_DIR = ".trainjobs"
"""In the study's work directory: the configs the TrainJobs read (``--config``)."""
GPU = "nvidia.com/gpu"
TEMPLATE_ENV = "WEAM_TRAINJOB_TEMPLATE"
POLL_SECONDS = 15.0
"""Between two reads of the TrainJob's status."""
REPORT_EVERY = 300.0
"""A progress line at least this often while nothing changes."""


def template_path() -> Path:
    """k8s/trainer/trainjob.yaml: from WEAM_TRAINJOB_TEMPLATE, the source tree, or the image
    (the Dockerfile copies it to /opt/weam/k8s/trainer/)."""
    if os.environ.get(TEMPLATE_ENV):
        return Path(os.environ[TEMPLATE_ENV])
    for folder in (Path(__file__).resolve().parents[1] / "k8s", Path("/opt/weam/k8s")):
        path = folder / "trainer" / "trainjob.yaml"
        if path.is_file():
            return path
    raise WeamError(f"no TrainJob template: set {TEMPLATE_ENV} to k8s/trainer/trainjob.yaml")


def template(path: Path | None = None) -> dict[str, Any]:
    """The TrainJob document of k8s/trainer/trainjob.yaml."""
    path = path or template_path()
    documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    found = [d for d in documents if d.get("kind") == "TrainJob"]
    if len(found) != 1:
        raise WeamError(f"{path}: {len(found)} TrainJob documents, expected one")
    return found[0]


def processes(step) -> int:
    parallel = step.config.parallel
    return parallel.nodes * parallel.gpus_per_node


def job_name(step) -> str:
    """``weam-<key>-<hash>``: lower-case letters, digits and dashes, at most 63 characters."""
    digest = hashlib.sha256(dump_config(step.config).encode("utf-8")).hexdigest()[:10]
    slug = re.sub(r"[^a-z0-9]+", "-", step.key.lower()).strip("-")
    return f"weam-{slug}"[: 63 - len(digest) - 1].rstrip("-") + f"-{digest}"


def step_config(step, tracking) -> Any:
    """The step's config as the TrainJob's ranks read it: the study's MLflow run name, tags and
    experiment written in (none of them is in the fingerprint)."""
    from weam.stages import run_name, stage_tags

    config = step.config.model_copy(deep=True)
    config.logging.run_name = run_name(step)
    tags = {**stage_tags(step), **(tracking.tags if tracking else {})}
    config.logging.tags = {**config.logging.tags, **{k: str(v) for k, v in tags.items()}}
    if tracking is not None:
        config.logging.tracking.experiment = tracking.experiment
        config.logging.tracking.enabled = tracking.enabled
        if tracking.uri and not tracking.uri.startswith("sqlite:"):
            config.logging.tracking.uri = tracking.uri
    return config


def render(step, config_file: Path, parent_run_id: str | None, base: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The TrainJob body for ``step`` (``base``: the template's TrainJob document)."""
    parallel = step.config.parallel
    body = copy.deepcopy(base)
    body["metadata"]["name"] = job_name(step)
    body["metadata"]["namespace"] = namespace
    body["metadata"].setdefault("labels", {})["weam.dev/step"] = re.sub(r"[^A-Za-z0-9_.-]+", ".", step.key)[:63]
    body["metadata"].setdefault("annotations", {})["weam.dev/step-key"] = step.key
    trainer = body["spec"].setdefault("trainer", {})
    trainer["numNodes"] = parallel.nodes
    trainer["numProcPerNode"] = parallel.gpus_per_node
    for side in ("requests", "limits"):
        trainer.setdefault("resourcesPerNode", {}).setdefault(side, {})[GPU] = parallel.gpus_per_node
    trainer["args"] = ["-m", "weam.cli", "pretrain", "run", "--config", str(config_file)]
    if parent_run_id:
        trainer["env"] = [{"name": "WEAM_PARENT_RUN_ID", "value": parent_run_id}]
    return body


def condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The TrainJob's condition of this type when its status is True."""
    for found in (job.get("status") or {}).get("conditions") or []:
        if found.get("type") == kind and found.get("status") == "True":
            return found
    return None


def describe(job: dict[str, Any]) -> str:
    """``Created; node: 2 active, 0 succeeded, 0 failed``: the conditions that hold and the jobs' counts."""
    status = job.get("status") or {}
    held = [c["type"] for c in status.get("conditions") or [] if c.get("status") == "True"]
    jobs = [f"{j.get('name')}: {j.get('active', 0)} active, {j.get('succeeded', 0)} succeeded, "
            f"{j.get('failed', 0)} failed" for j in status.get("jobsStatus") or []]
    return "; ".join([", ".join(held) or "pending", *jobs])


def kubernetes_api():
    """CustomObjectsApi as the driver is allowed: in a pod, its ServiceAccount; else the kubeconfig."""
    from kubernetes import client, config

    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
    else:
        config.load_kube_config()
    return client.CustomObjectsApi()


def namespace_in_use() -> str:
    """The pod's namespace (projected with its token), else WEAM_NAMESPACE, else ``weam``."""
    try:
        return NAMESPACE_FILE.read_text(encoding="utf-8").strip()
    except OSError:
        return os.environ.get("WEAM_NAMESPACE", DEFAULT_NAMESPACE)


class TrainJobLauncher:
    """Runs one step as a TrainJob and waits for it (:attr:`weam.stages.Stage.launcher`)."""

    def __init__(self, step, api=None, namespace: str | None = None, base: dict[str, Any] | None = None,
                 poll_seconds: float | None = None, report_every: float | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.step = step
        self._api = api
        self.namespace = namespace
        self.base = base
        self.poll_seconds = POLL_SECONDS if poll_seconds is None else poll_seconds
        self.report_every = REPORT_EVERY if report_every is None else report_every
        self.sleep = sleep
        self.clock = clock
        self.stop = threading.Event()
        """Set by the driver when it stops (Ctrl-C): the wait ends, the TrainJob is left running and a
        re-submitted study waits for it again (same name)."""

    @property
    def api(self):
        if self._api is None:
            self._api = kubernetes_api()
        return self._api

    def describe(self) -> str:
        parallel = self.step.config.parallel
        return (f"TrainJob {self.namespace or namespace_in_use()}/{job_name(self.step)} "
                f"({parallel.nodes} node(s) x {parallel.gpus_per_node} GPU)")

    def run(self, tracking, echo: Callable[[str], None] = print) -> None:
        """Create the TrainJob (or find the one of the same config), wait for it, check the manifest."""
        from weam.core.manifest import atomic_write
        from weam.stages import verdict

        namespace = self.namespace or namespace_in_use()
        work = Path(self.step.work_dir or self.step.out_dir.parent)
        config_file = work / CONFIG_DIR / f"{job_name(self.step)}.yaml"
        with atomic_write(config_file) as handle:
            handle.write(dump_config(step_config(self.step, tracking)))
        body = render(self.step, config_file, tracking.parent_run_id if tracking else None,
                      self.base or template(), namespace)
        name = body["metadata"]["name"]
        self._create(body, namespace, echo)
        self._wait(name, namespace, echo)
        state = verdict(self.step)
        if not state.done:
            raise WeamError(f"TrainJob {namespace}/{name} completed, but the step's manifest in "
                            f"{self.step.out_dir} is not done ({state.state}: {state.reason})")

    def _create(self, body: dict[str, Any], namespace: str, echo) -> None:
        name, key = body["metadata"]["name"], self.step.key
        try:
            self.api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
            echo(f"{key}: created TrainJob {namespace}/{name}")
            return
        except Exception as exc:
            if getattr(exc, "status", None) != 409:
                raise WeamError(f"could not create TrainJob {namespace}/{name}: {_reason(exc)}") from exc
        existing = self.api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        if condition(existing, "Failed") or condition(existing, "Complete"):
            # A finished TrainJob of an earlier submission: its step is not done (or the driver
            # would have skipped it), so it runs again (resuming from its checkpoint).
            echo(f"{key}: TrainJob {namespace}/{name} of an earlier submission has ended "
                 f"({describe(existing)}); replacing it")
            self.api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                                     body={"propagationPolicy": "Foreground"})
            while not self.stop.is_set():
                try:
                    self.api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
                except Exception as exc:
                    if getattr(exc, "status", None) == 404:
                        break
                    raise
                self.sleep(self.poll_seconds)
            self.api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
            echo(f"{key}: created TrainJob {namespace}/{name}")
        else:
            echo(f"{key}: TrainJob {namespace}/{name} is already running (an earlier submission); waiting for it")

    def _wait(self, name: str, namespace: str, echo) -> None:
        key = self.step.key
        began = self.clock()
        last_line, last_time = None, began
        while not self.stop.is_set():
            job = self.api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            failed = condition(job, "Failed")
            if failed:
                raise WeamError(f"TrainJob {namespace}/{name} failed: {failed.get('reason', '')}: "
                                f"{failed.get('message', '')} (kubectl -n {namespace} describe trainjob {name})")
            if condition(job, "Complete"):
                echo(f"{key}: TrainJob {namespace}/{name} complete after {self.clock() - began:.0f} s")
                return
            line = describe(job)
            now = self.clock()
            if line != last_line or now - last_time >= self.report_every:
                echo(f"{key}: TrainJob {namespace}/{name}: {line} ({now - began:.0f} s)")
                last_line, last_time = line, now
            self.sleep(self.poll_seconds)
        raise WeamError(f"{key}: stopped waiting for TrainJob {namespace}/{name} (left running; a re-submitted "
                        "study waits for it again)")


def _reason(exc: BaseException) -> str:
    status, reason = getattr(exc, "status", None), getattr(exc, "reason", None)
    return f"HTTP {status} {reason}" if status else f"{type(exc).__name__}: {exc}"


def trainjob_launcher(step) -> TrainJobLauncher | None:
    """A :attr:`weam.stages.Stage.launcher` rule: a TrainJob for a run of more than one process."""
    return TrainJobLauncher(step) if processes(step) > 1 else None

"""What this process knows about a tracking server: the first run a process opens against it
probes it once (one request, a few seconds at most, no retries); when it does not answer, that is
said once on stderr and runs go to the buffer journal until it answers again (then the journal is
replayed)."""

from __future__ import annotations

import threading
import time

from weam.core.secrets import redact, strip_credentials
from weam.core.tracking.journal import Journal
from weam.core.tracking.store import _notify, _short, is_remote, make_client
from weam.core.tracking.sync import replay

PROBE_TIMEOUT_S = 3.0
RECHECK_S = 120.0
"""While offline, a new run re-probes the server at most this often (and replays once it is back)."""


def probe(uri: str, timeout: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """One bounded request (no retries): is the server there and does it take our credentials?"""
    if not is_remote(uri):
        return True, "local store"
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    try:
        response = http_request(get_default_host_creds(uri), "/api/2.0/mlflow/experiments/search", "POST",
                                max_retries=0, backoff_factor=0, timeout=timeout, raise_on_status=False,
                                json={"max_results": 1})
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"; the reason is shown
        return False, redact(f"cannot reach the MLflow server {uri} ({_short(exc)})")
    if response.status_code in (401, 403):
        return False, (f"the MLflow server {redact(uri)} refused the credentials (HTTP {response.status_code}); check "
                       "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)")
    if response.status_code >= 400:
        return False, redact(f"the MLflow server {uri} answered HTTP {response.status_code}: {response.text[:200]}")
    return True, "reachable"


class _Server:
    """What this process knows about one tracking URI: online or not, said once."""

    _all: dict[str, _Server] = {}
    _lock = threading.Lock()

    def __init__(self, uri: str):
        self.uri = uri
        self.online: bool | None = None
        self.checked = 0.0
        self.reason = ""
        self._client = None

    @classmethod
    def get(cls, uri: str) -> _Server:
        with cls._lock:
            return cls._all.setdefault(uri, cls(uri))

    @classmethod
    def forget(cls) -> None:
        """Drop what this process learnt (tests; a long-lived process that wants a fresh probe)."""
        with cls._lock:
            cls._all.clear()

    @property
    def client(self):
        if self._client is None:
            self._client = make_client(self.uri)
        return self._client

    def check(self, journal: Journal | None) -> bool:
        """Probe once (and again every RECHECK_S while offline); replay ``journal`` when online."""
        due = self.online is None or (not self.online and time.monotonic() - self.checked > RECHECK_S)
        if due:
            ok, reason = probe(self.uri)
            self.checked = time.monotonic()
            if not ok:
                self.went_offline(reason, journal)
                return False
            if self.online is False:
                _notify(f"the MLflow server {self.uri} answers again")
            self.online = True
        if self.online and journal is not None and journal.pending(self.uri):
            try:
                result = replay(journal, self.uri, client=self.client, only_this_uri=True)
            except Exception as exc:  # noqa: BLE001 - replay is retried by the next run or `weam tracking sync`
                self.went_offline(f"replaying {journal.folder} failed ({_short(exc)})", journal)
                return False
            _notify(f"replayed {result['records']} buffered records ({result['runs']} runs) from {journal.folder} "
                    f"to {self.uri}")
        return bool(self.online)

    def went_offline(self, reason: str, journal: Journal | None) -> None:
        if self.online is not False:
            where = journal.folder if journal is not None else "nowhere (no buffer directory)"
            # The suggested command names the server without credentials: sync takes them from the
            # environment (MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME/PASSWORD or ~/.mlflow/credentials).
            _notify(f"{reason}; the work goes on and its runs are buffered in {where}; send them with "
                    f"`weam tracking sync --buffer {where} --uri {strip_credentials(self.uri)}` (the next run "
                    "that reaches the server also does)")
        self.online, self.reason, self.checked = False, reason, time.monotonic()

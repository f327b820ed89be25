"""What bench/scale.py samples in a thread while it runs, every ~0.5 s:

* `GET /api/projects/<id>/next` (what the labeling stream serves; Label Studio asks the backend for
  a prediction of the served task when it has none of the project's model_version) and a data
  manager page `GET /api/tasks?project=<id>&page=1&page_size=30`: their latency, and the served
  task with the model_versions of its predictions;
* the backend's versions (`GET /versions?project=<id>`): when each was first seen;
* both servers' resident memory, and their private heap (RssAnon) per phase;
* each sample slower than SLOW_S, with when it started (wall clock, as the servers' logs write it):
  what to look up in the logs of a run kept with --keep.

Each sample is kept with the phase the bench was in ("import", "corrections", ...).
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field

SLOW_S = 1.0  # a sample slower than this is kept with its start time


@dataclass
class Served:
    at: float
    task: int | None
    versions: set[str]


@dataclass
class Samples:
    latency: dict[str, list[tuple[str, float]]] = field(default_factory=lambda: {"next": [], "page": []})
    served: list[Served] = field(default_factory=list)
    version_seen: dict[str, float] = field(default_factory=dict)
    ls_version_seen: dict[str, float] = field(default_factory=dict)  # the project's model_version in LS
    rss_peak: dict[str, float] = field(default_factory=dict)
    rss_anon_peak: dict[str, float] = field(default_factory=dict)  # "<phase> <server>": MB
    errors: list[str] = field(default_factory=list)
    slow: list[dict] = field(default_factory=list)  # {"kind", "phase", "at" (epoch s), "seconds"}


class Watch:
    def __init__(self, up, every: float = 0.5):
        self.up, self.every = up, every
        self.samples = Samples()
        self.phase = "start"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scale-watch", daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            for step in (self._next, self._page, self._versions, self._ls_version, self._rss):
                try:
                    step()
                except Exception as exc:  # a sample lost is reported, the run goes on
                    if len(self.samples.errors) < 50:
                        self.samples.errors.append(f"{step.__name__}: {type(exc).__name__}: {exc}"[:300])
            self._stop.wait(max(0.0, self.every - (time.monotonic() - t0)))

    def _timed(self, kind: str, path: str, params: dict):
        at, t0 = time.time(), time.perf_counter()
        r = self.up.ls("GET", path, params)
        seconds = time.perf_counter() - t0
        self.samples.latency[kind].append((self.phase, seconds))
        if seconds > SLOW_S:
            slow = {"kind": kind, "phase": self.phase, "at": round(at, 3), "seconds": round(seconds, 2)}
            self.samples.slow.append(slow)
        return r

    def _next(self) -> None:
        r = self._timed("next", f"/api/projects/{self.up.pid}/next", {})
        body = r.json() if r.status_code == 200 else {}
        versions = {p.get("model_version") for p in body.get("predictions") or []}
        self.samples.served.append(Served(time.time(), body.get("id"), versions))

    def _page(self) -> None:
        self._timed("page", "/api/tasks", {"project": self.up.pid, "page": 1, "page_size": 30})

    def _versions(self) -> None:
        for vid in self.up.versions()["versions"]:
            self.samples.version_seen.setdefault(vid, time.time())

    def _ls_version(self) -> None:
        """When Label Studio's project first named each version: its head is in, and `/next`
        serves from it to anyone without a task locked to them (a person, after their next submit)."""
        vid = self.up.ls("GET", f"/api/projects/{self.up.pid}", {}).json().get("model_version")
        if vid:
            self.samples.ls_version_seen.setdefault(vid, time.time())

    def _rss(self) -> None:
        for name, mb in self.up.rss_mb().items():
            self.samples.rss_peak[name] = max(mb, self.samples.rss_peak.get(name, 0.0))
        for name, mb in self.up.rss_mb("RssAnon").items():
            key = f"{self.phase} {name}"
            self.samples.rss_anon_peak[key] = max(mb, self.samples.rss_anon_peak.get(key, 0.0))

    def first_served(self, version: str, after: float) -> float | None:
        """When /next first served a task with a prediction of `version`, at or after `after`."""
        return next((s.at for s in self.samples.served if s.at >= after and version in s.versions), None)

    def latency(self, kind: str, phase: str | None = None) -> dict:
        """p50 / p95 / max (ms) and the number of samples of `kind`, in `phase` or in the whole run."""
        values = sorted(v for p, v in self.samples.latency[kind] if phase is None or p == phase)
        return summary_ms(values)


def summary_ms(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "max_ms": None}
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "max_ms": round(values[-1] * 1000, 1),
    }

"""`tasveer import`'s fallback (sync/predictions.py): when the backend writes nothing for a while,
Label Studio's retrieve action predicts the missing tasks, newest first, and gives the backend its
turn back as soon as it writes again.

At 50,000 photos the backend paused for minutes (its collection update), the importer asked Label
Studio for every missing task oldest first, exactly where the backend was writing, and the two
fought over Label Studio's writes (bench/scale.py, 2026-12-05). The order and the hand-back are
control flow over the client's calls; their timing against a real backend is a race, so they are
played here by a fake client that is both Label Studio and a backend writing in upload order (the
real retrieve path against Label Studio is tests/test_import.py)."""

from __future__ import annotations

from sync.predictions import RETRIEVE_CHUNK, ensure_predictions


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeLabelStudio:
    """Tasks 1..n; `backend_writes` (time -> how many of the oldest tasks the backend has written
    by then) plays the backend; the retrieve action predicts the tasks it is given at once."""

    def __init__(self, n: int, clock: Clock, backend_writes):
        self.n, self.clock, self.backend_writes = n, clock, backend_writes
        self.retrieved: list[list[int]] = []
        self.asked_at: list[float] = []

    def _predicted(self) -> set[int]:
        written = set(range(1, 1 + min(self.n, self.backend_writes(self.clock.now))))
        return written | {t for chunk in self.retrieved for t in chunk}

    def predicted_among(self, project_id: int, task_ids) -> set[int]:
        self.clock.now += 0.1
        return set(task_ids) & self._predicted()

    def model_versions(self, project_id: int) -> dict[str, int]:
        return {"v0001": len(self._predicted())}

    def model_version(self, project_id: int) -> str:
        return "v0001"

    def task_action(self, project_id: int, action: str, task_ids, *, timeout: float) -> None:
        assert action == "retrieve_tasks_predictions"
        self.asked_at.append(self.clock.now)
        self.clock.now += 1.0
        self.retrieved.append(list(task_ids))


def run(n: int, backend_writes, monkeypatch, wait_backend: float = 15.0):
    clock = Clock()
    fake = FakeLabelStudio(n, clock, backend_writes)
    monkeypatch.setattr("time.sleep", lambda s: setattr(clock, "now", clock.now + s))
    report = ensure_predictions(
        fake, 1, list(range(1, n + 1)), wait_backend=wait_backend, timeout=3600, progress=False, clock=clock
    )
    return fake, report


def test_a_dead_backend_gets_every_task_retrieved_newest_first(monkeypatch):
    fake, report = run(400, lambda t: 0, monkeypatch)
    assert report.complete and not report.errors
    assert fake.retrieved[0] == list(range(351, 401))  # the newest chunk first
    assert [c[0] for c in fake.retrieved] == sorted((c[0] for c in fake.retrieved), reverse=True)
    assert sorted(t for c in fake.retrieved for t in c) == list(range(1, 401))  # each task asked for once
    assert len(fake.retrieved) == 400 // RETRIEVE_CHUNK


def test_a_paused_backend_gets_its_turn_back_and_its_tasks_are_not_retrieved(monkeypatch):
    # the backend writes 10 tasks a second, pauses from t=20 to t=60 (a collection update), then
    # goes on: the importer retrieves the newest tasks during the pause only
    def backend(t: float) -> int:
        return int(10 * min(t, 20) + 10 * max(0.0, t - 60))

    fake, report = run(2000, backend, monkeypatch)
    assert report.complete and not report.errors
    asked = sorted(t for c in fake.retrieved for t in c)
    assert asked == list(range(asked[0], 2001))  # one block at the newest end, each task once
    assert asked[0] > 200  # none of what the backend wrote before its pause
    # only during the pause: from 15 s without a new prediction (t=35) until the backend wrote
    # again (t=60), plus the chunk in flight then
    assert 35 <= min(fake.asked_at) and max(fake.asked_at) < 61.5, fake.asked_at
    assert len(asked) < 2000 - 200 - 400  # the backend wrote the tasks between, after its pause

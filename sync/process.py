"""A child process in its own process group with its output in a log file; stopped as a group."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


class ChildProcess:
    """Start `argv` in a new session (own process group) writing stdout+stderr to `log_path`.

    `stop()` sends SIGTERM to the whole group, waits `grace` seconds, then SIGKILLs the group,
    so grandchildren (Label Studio spawns none by default, uvicorn workers might) never outlive it.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        cwd: str | os.PathLike | None = None,
    ):
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = Path(log_path)
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()  # the child holds its own descriptor

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def log_tail(self, lines: int = 40) -> str:
        try:
            data = self.log_path.read_bytes()[-20000:]
        except OSError:
            return "(no log)"
        return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])

    def _signal_group(self, sig: int) -> None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, sig)  # pgid == pid: start_new_session=True
        except ProcessLookupError:
            pass

    def stop(self, grace: float = 15.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(timeout=10)
        # the leader is gone; make sure no member of its group survived it
        self._signal_group(signal.SIGKILL)


class ManagedServer:
    """Life cycle shared by the servers `sync` runs as children: subclasses set `self._child` in
    `spawn()` and implement `wait_ready()`; `start()` is both, and `with` stops the process group."""

    _child: ChildProcess | None = None

    def spawn(self) -> None:
        raise NotImplementedError

    def wait_ready(self):
        raise NotImplementedError

    def start(self):
        self.spawn()
        return self.wait_ready()

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child else None

    def alive(self) -> bool:
        return self._child is not None and self._child.alive()

    def log_tail(self, lines: int = 40) -> str:
        return self._child.log_tail(lines) if self._child else "(not started)"

    def stop(self) -> None:
        if self._child is not None:
            self._child.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

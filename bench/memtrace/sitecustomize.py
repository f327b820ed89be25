"""Track the backend's allocations with memray from its start, for bench/scale.py runs:

    PYTHONPATH=bench/memtrace MEMTRACE_OUT=/tmp/mem MEMTRACE_SECS=150 .venv/bin/python bench/scale.py --n 2000
    .venv/bin/python bench/memtrace/top.py /tmp/mem.<pid>.bin

Python imports this module at every start on PYTHONPATH; only a process started as `-m backend`
(the backend `tasveer up` runs) is tracked, for MEMTRACE_SECS seconds (the capture is written when
tracking stops: the backend is killed, not exited, at the end of a run). `memray attach` cannot
be used here: its debugger injection fails in this sandbox. Needs `pip install memray`.
"""

import os
import threading

try:
    _ARGV = open("/proc/self/cmdline", "rb").read().split(b"\0")
except OSError:
    _ARGV = []

if b"-m" in _ARGV and b"backend" in _ARGV and os.environ.get("MEMTRACE_OUT"):
    import memray

    _tracker = memray.Tracker(
        f"{os.environ['MEMTRACE_OUT']}.{os.getpid()}.bin", file_format=memray.FileFormat.AGGREGATED_ALLOCATIONS
    )
    _tracker.__enter__()
    _stop = threading.Timer(float(os.environ.get("MEMTRACE_SECS", "120")), _tracker.__exit__, (None, None, None))
    _stop.daemon = True
    _stop.start()

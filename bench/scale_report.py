"""bench/scale.py's figures per N: the printed table and the plot against N (docs/img/scale.png)."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path


def _median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 1) if values else None


def _max(values):
    values = [v for v in values if v is not None]
    return max(values) if values else None


STEPS = (  # a correction's training job, then its refresh
    "read",
    "fit",
    "compare",
    "publish",
    "refresh waiting for the one before",
    "refresh: every task's row computed",
    "refresh until the head is in",
)


def figures(run: dict) -> dict:
    """The per-N figures the table prints and the plot draws."""
    imp, model, corr = run["import"], run["model"], run["corrections"]
    publish = [c["publish_s"] for c in corr]
    serves = [c["next_serves_s"] for c in corr]
    heads = [c.get("head_in_s") for c in corr]
    lat = run["latency"]
    return {
        "N": run["n"],
        "import s": imp["seconds"],
        "import photos/s": imp["photos_per_s"],
        "backend write-back photos/s": (imp.get("writeback") or {}).get("tasks_per_s"),
        "model photos/s": model["photos_per_s"],
        "import / model time": round(imp["seconds"] / model["seconds_for_n"], 1),
        "publish s p50": _median(publish),
        "publish s max": _max(publish),
        # a version superseded before its head was written never reaches LS: the p50 is of the others
        "versions LS named (head in), of corrections": f"{sum(h is not None for h in heads)} of {len(heads)}",
        "LS on it (head in) s p50": _median(heads),
        "LS on it (head in) s max": _max(heads),
        "/next serves it s p50": _median(serves),
        "/next serves it s max": _max(serves),
        **{f"training {k} s p50": (run.get("job_steps_p50") or {}).get(k) for k in STEPS},
        "LS requests / correction (LS log)": round(run["ls_requests_corrections"] / max(1, len(corr)), 1),
        **backend_requests(run["backend_ls_requests_corrections"], max(1, len(corr))),
        "/next p50 ms": lat["next"]["all"]["p50_ms"],
        "/next p95 ms": lat["next"]["all"]["p95_ms"],
        "page p50 ms": lat["page"]["all"]["p50_ms"],
        "page p95 ms": lat["page"]["all"]["p95_ms"],
        "backend RSS MB": run["rss_peak_mb"].get("backend"),
        "LS RSS MB": run["rss_peak_mb"].get("labelstudio"),
        "tasks without prediction": imp["without_prediction"],
        "corrections not trained on": sum(1 for c in corr if c["version"] is None),
    }


def backend_requests(counted: dict | int, corrections: int) -> dict:
    """Per correction, the backend's own count: all of it, and the part until `/next` serves the
    version (the training's reads and the head's write; the rest's batches fill the time between)."""
    if isinstance(counted, int):  # a run saved before the split
        return {"LS requests / correction (backend)": round(counted / corrections, 1), "of them to serve it": None}
    return {
        "LS requests / correction (backend)": round(sum(counted.values()) / corrections, 1),
        "of them to serve it": round((counted["training"] + counted["head"]) / corrections, 1),
    }


def table(runs: list[dict]) -> str:
    rows = [figures(r) for r in runs]
    if not rows:
        return "(no runs)"
    width = max(len(k) for k in rows[0])
    lines = [f"{'':<{width}}  " + "  ".join(f"{r['N']:>10}" for r in rows)]
    for key in list(rows[0])[1:]:
        lines.append(f"{key:<{width}}  " + "  ".join(f"{_cell(r[key]):>10}" for r in rows))
    return "\n".join(lines)


def _cell(value) -> str:
    return "-" if value is None else str(value)


PANELS = [
    ("photos per second", ["import photos/s", "backend write-back photos/s", "model photos/s"]),
    ("seconds after a correction", ["publish s p50", "LS on it (head in) s p50", "/next serves it s p50"]),
    ("latency (ms)", ["/next p50 ms", "/next p95 ms", "page p50 ms", "page p95 ms"]),
    (
        "Label Studio requests per correction",
        ["LS requests / correction (LS log)", "LS requests / correction (backend)", "of them to serve it"],
    ),
    ("peak RSS (MB)", ["backend RSS MB", "LS RSS MB"]),
]


def plot(runs: list[dict], path: Path) -> None:
    """Each figure against N (log x), one panel per kind, one line per database (SQLite: solid,
    circles; PostgreSQL: dashed, squares); nothing without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
        return
    databases = sorted({r["database"] for r in runs}, reverse=True)  # sqlite first
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    axes = axes.ravel()
    axes[-1].axis("off")
    for ax, (title, keys) in zip(axes, PANELS):
        top = 0.0
        for i, key in enumerate(keys):
            for db in databases:
                rows = sorted((figures(r) for r in runs if r["database"] == db), key=lambda f: f["N"])
                ys = [float("nan") if f[key] is None else float(f[key]) for f in rows]
                style, marker = ("--", "s") if db == "postgres" else ("-", "o")
                label = key if db == databases[0] else None  # one legend entry per figure
                ax.plot([f["N"] for f in rows], ys, style, marker=marker, color=f"C{i}", label=label)
                top = max([top, *(y for y in ys if y == y)])
        ax.set_xscale("log")
        ax.set_ylim(0, top * 1.5 or 1)  # room above for the legend
        ax.set_xlabel("photos imported (N)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(alpha=0.3)
    marks = {"sqlite": "circles", "postgres": "squares"}
    where = "; ".join(
        f"{db} ({marks[db]}) at " + ", ".join(f"{r['n']:,}" for r in runs if r["database"] == db) for db in databases
    )
    fig.suptitle(f"bench/scale.py: per N photos imported: {where}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)

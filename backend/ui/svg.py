"""Inline SVG plots of the model page: learning curve, reliability diagram, confusion matrix."""

from __future__ import annotations

from backend.ui.html import esc

BLUE, ORANGE, GREEN, GREY = "#2c6fbb", "#e08a2c", "#1a7f37", "#999"


def _frame(width: int, height: int, label: str) -> list[str]:
    return [
        f"<svg width='{width}' height='{height}' viewBox='0 0 {width} {height}' role='img' "
        f"aria-label='{esc(label)}' class='chart'>"
    ]


def _y_grid(out, left, right_x, top, plot_h, ticks=(0, 0.25, 0.5, 0.75, 1.0)):
    for frac in ticks:
        y = top + (1 - frac) * plot_h
        out.append(
            f"<line x1='{left}' x2='{right_x}' y1='{y:.1f}' y2='{y:.1f}' stroke='#eee'/>"
            f"<text x='{left - 5}' y='{y + 4:.1f}' font-size='11' text-anchor='end'>{frac:.0%}</text>"
        )


def learning_curve(points: list[dict], width: int = 560, height: int = 260) -> str:
    """Accuracy (y) against number of labels (x), one dot per version: {"n", "accuracy",
    "version", "serving", "candidate", "source"}. Leave-one-out and validation-split dots are
    hollow (rough estimates); the serving version is ringed in green."""
    points = [p for p in points if p.get("accuracy") is not None and p.get("n")]
    if not points:
        return "<p class='muted'>No evaluated version yet.</p>"
    left, right, top, bottom = 46, 20, 14, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    lo, hi = min(p["n"] for p in points), max(p["n"] for p in points)
    span = max(1, hi - lo)

    def xy(p):
        x = left + (plot_w / 2 if hi == lo else (p["n"] - lo) / span * plot_w)
        return x, top + (1 - p["accuracy"]) * plot_h

    out = _frame(width, height, "learning curve: accuracy by number of labels")
    _y_grid(out, left, width - right, top, plot_h)
    for n in sorted({lo, hi, (lo + hi) // 2}):
        x = left + (plot_w / 2 if hi == lo else (n - lo) / span * plot_w)
        out.append(f"<text x='{x:.1f}' y='{top + plot_h + 16}' font-size='11' text-anchor='middle'>{n}</text>")
    out.append(
        f"<text x='{left + plot_w / 2:.1f}' y='{height - 14}' font-size='11' text-anchor='middle'>labels used</text>"
    )
    ordered = sorted(points, key=lambda p: (p["n"], p.get("version") or ""))
    line = [p for p in ordered if not p.get("candidate")]  # candidates are dots off the line
    if len(line) > 1:
        path = " ".join("{:.1f},{:.1f}".format(*xy(p)) for p in line)
        out.append(f"<polyline points='{path}' fill='none' stroke='{BLUE}' stroke-width='1.5' opacity='.6'/>")
    for p in ordered:
        x, y = xy(p)
        rough = p.get("source") in ("leave-one-out", "validation split")
        colour = ORANGE if p.get("candidate") else BLUE
        fill = "#fff" if rough else colour
        out.append(
            f"<circle cx='{x:.1f}' cy='{y:.1f}' r='4' fill='{fill}' stroke='{colour}' stroke-width='2'>"
            f"<title>{esc(str(p.get('version')))}: {p['accuracy']:.1%} on {p['n']} labels "
            f"({esc(str(p.get('source')))})</title></circle>"
        )
        if p.get("serving"):
            out.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='8' fill='none' stroke='{GREEN}' stroke-width='2'/>")
    out.append(
        f"<text x='{left}' y='{height - 2}' font-size='11' fill='{BLUE}'>&#9679; accuracy</text>"
        f"<text x='{left + 80}' y='{height - 2}' font-size='11' fill='{BLUE}'>&#9675; rough estimate</text>"
        f"<text x='{left + 190}' y='{height - 2}' font-size='11' fill='{ORANGE}'>&#9679; candidate</text>"
        f"<text x='{left + 280}' y='{height - 2}' font-size='11' fill='{GREEN}'>&#9711; serving</text>"
    )
    out.append("</svg>")
    return "".join(out)


def reliability_diagram(bins: list[dict], width: int = 300, height: int = 300) -> str:
    """Per confidence bin ({"lo", "hi", "n", "accuracy", "confidence"}): a bar as high as the
    bin's accuracy, a dot at its mean confidence; the diagonal is perfect calibration."""
    if not bins:
        return "<p class='muted'>No reliability data recorded for this version.</p>"
    left, right, top, bottom = 42, 12, 12, 40
    pw, ph = width - left - right, height - top - bottom
    out = _frame(width, height, "reliability diagram")
    _y_grid(out, left, width - right, top, ph)
    for frac in (0, 0.5, 1.0):
        out.append(
            f"<text x='{left + frac * pw:.1f}' y='{top + ph + 14}' font-size='11' "
            f"text-anchor='middle'>{frac:.0%}</text>"
        )
    out.append(
        f"<line x1='{left}' y1='{top + ph}' x2='{left + pw}' y2='{top}' stroke='{GREY}' stroke-dasharray='4 3'/>"
    )
    for b in bins:
        x0, x1 = left + b["lo"] * pw, left + b["hi"] * pw
        y = top + (1 - b["accuracy"]) * ph
        out.append(
            f"<rect x='{x0 + 1:.1f}' y='{y:.1f}' width='{max(1.0, x1 - x0 - 2):.1f}' "
            f"height='{top + ph - y:.1f}' fill='{BLUE}' opacity='.75'><title>confidence "
            f"{b['lo']:.0%}-{b['hi']:.0%}: {b['n']} photo(s), accuracy {b['accuracy']:.0%}, mean "
            f"confidence {b['confidence']:.0%}</title></rect>"
        )
        cx = left + b["confidence"] * pw
        out.append(f"<circle cx='{cx:.1f}' cy='{top + (1 - b['confidence']) * ph:.1f}' r='3' fill='{ORANGE}'/>")
    out.append(
        f"<text x='{left + pw / 2:.1f}' y='{height - 10}' font-size='11' text-anchor='middle'>"
        "confidence</text></svg><div class='small muted'>bars: accuracy per confidence bin; dots: mean "
        "confidence; dashed: perfect calibration</div>"
    )
    return "".join(out)


def confusion_matrix(labels: list[str], matrix: list[list[int]], cell: int = 38) -> str:
    """Rows = true label, columns = predicted; colour = share of the row, the count in each cell."""
    if not matrix:
        return "<p class='muted'>No confusion matrix recorded for this version.</p>"
    n = len(labels)
    left, top = 90, 84
    width, height = left + n * cell + 10, top + n * cell + 8
    out = _frame(width, height, "confusion matrix")
    for j, label in enumerate(labels):
        x = left + j * cell + cell / 2
        out.append(f"<text transform='translate({x:.1f},{top - 6}) rotate(-45)' font-size='11'>{esc(label)}</text>")
    for i, label in enumerate(labels):
        row = matrix[i]
        total = max(1, sum(row))
        out.append(
            f"<text x='{left - 6}' y='{top + i * cell + cell / 2 + 4:.1f}' font-size='11' "
            f"text-anchor='end'>{esc(label)}</text>"
        )
        for j, count in enumerate(row):
            share = count / total
            shade = int(255 - 180 * share)
            text = "#fff" if share > 0.55 else "#222"
            x, y = left + j * cell, top + i * cell
            out.append(
                f"<rect x='{x}' y='{y}' width='{cell - 1}' height='{cell - 1}' "
                f"fill='rgb({shade},{shade + (255 - shade) // 4},255)'><title>true {esc(label)}, "
                f"predicted {esc(labels[j])}: {count}</title></rect>"
                f"<text x='{x + cell / 2:.1f}' y='{y + cell / 2 + 4:.1f}' font-size='12' "
                f"text-anchor='middle' fill='{text}'>{count}</text>"
            )
    out.append("</svg><div class='small muted'>rows: true label, columns: predicted</div>")
    return "".join(out)

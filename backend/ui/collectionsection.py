"""The collection section of the model page: how many near-duplicate groups and unusual photos the
last update found, the leaky-evaluation warning (labeled copies of one photo on both sides of the
cross-validation's folds), and where to look (the Label Studio tabs, the JSON routes). Read from
the stored result (backend/collection/report.py): the page computes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from backend.collection import report
from backend.collection.lsmarks import UNUSUAL_MIN, UNUSUAL_SHOWN
from backend.ui.html import esc
from lsproto.views import DUPLICATES, UNUSUAL_PHOTOS


def collection_section(service, pid: str) -> str:
    curation = service.curator.latest(pid)
    head = "<h2>Collection</h2>"
    if curation is None:
        return head + "<p class='muted'>Not looked at yet: the first predicted photos start it.</p>"
    dups = report.duplicates(curation, pid)
    leaky = dups["leaky_evaluation"]
    unusual = sum(1 for u in curation.unusual[:UNUSUAL_SHOWN] if u["score"] >= UNUSUAL_MIN)
    when = datetime.fromtimestamp(curation.updated_at, UTC).isoformat(timespec="seconds")
    lines = [
        f"<p><b>{len(dups['groups'])}</b> near-duplicate groups ({dups['in_groups']} of {curation.held} photos; "
        f"tab <i>{esc(DUPLICATES)}</i> in Label Studio, <a href='/projects/{esc(pid)}/duplicates'>JSON</a>); "
        f"<b>{unusual}</b> unusual photos (tab <i>{esc(UNUSUAL_PHOTOS)}</i>, "
        f"<a href='/projects/{esc(pid)}/unusual'>JSON</a>). <span class='muted small'>updated {esc(when)}</span></p>"
    ]
    if leaky["groups"]:
        disagree = sum(1 for g in leaky["groups"] if not g["agree"])
        lines.append(
            f"<p id='leaky'><b>Leaky evaluation:</b> {len(leaky['groups'])} groups hold two labeled photos or more "
            f"({leaky['labeled_copies']} labeled copies): copies of one photo can sit in different "
            "cross-validation folds, so the accuracy shown is somewhat optimistic"
            + (f"; in {disagree} of them the labels disagree" if disagree else "")
            + ".</p>"
        )
    return head + "".join(lines)

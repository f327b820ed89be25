"""The model page of one project, section by section. A new section is one entry of SECTIONS: a
function of the PageContext returning HTML; what it does in the browser goes in static/page.js
(wired by data-* attributes: the page's policy runs no inline script); the similar-photos panel
has its own, static/similar.js (SIMILAR_SCRIPT_URL), loaded before the sections."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backend.ui import collectionsection, deploysection, gallery, mapsection, params_form, training, versions
from backend.ui.html import document, esc

log = logging.getLogger(__name__)
SIMILAR_SCRIPT_URL = "/static/similar.js"


@dataclass
class PageContext:
    service: object
    pid: str
    selected: str | None = None
    manifests: list[dict] = field(default_factory=list)
    serving: str | None = None
    rows: list[dict] = field(default_factory=list)
    production: str | None = None

    @classmethod
    def load(cls, service, pid: str, selected: str | None = None) -> PageContext:
        serving = service.serving.model_version(pid)
        manifests = service.serving.versions(pid)
        production = service.production.shown(pid)
        rows = [versions.version_row(mf, serving, production) for mf in manifests]
        known = {mf.get("version") for mf in manifests}
        chosen = (
            selected
            if selected in known
            else (serving if serving in known else (manifests[-1]["version"] if manifests else None))
        )
        return cls(service, pid, chosen, manifests, serving, rows, production)


def _training(ctx: PageContext) -> str:
    return training.training_section(ctx.pid, training.training_status(ctx.service, ctx.pid))


def _gallery(ctx: PageContext) -> str:
    try:
        return gallery.gallery_section(gallery.latest_batch(ctx.service, ctx.pid))
    except Exception as exc:  # Label Studio down: the rest of the page still shows
        log.warning("project %s: latest batch: %s", ctx.pid, exc)
        return gallery.gallery_section(None, f"{type(exc).__name__}: {exc}")


def _map(ctx: PageContext) -> str:
    return mapsection.map_section(ctx.pid)


def _collection(ctx: PageContext) -> str:
    return collectionsection.collection_section(ctx.service, ctx.pid)


def _versions(ctx: PageContext) -> str:
    return "<h2>Versions</h2>" + versions.versions_table(ctx.pid, ctx.rows, ctx.selected)


def _production(ctx: PageContext) -> str:
    service: Any = ctx.service
    return deploysection.production_section(
        ctx.pid, ctx.production, service.production.history(ctx.pid), service.api_keys.info(ctx.pid)
    )


def _selected(ctx: PageContext) -> str:
    return versions.selected_version(next((m for m in ctx.manifests if m.get("version") == ctx.selected), None))


def _curve(ctx: PageContext) -> str:
    return "<h2>Learning curve</h2>" + versions.learning_curve(ctx.rows)


def _params(ctx: PageContext) -> str:
    service: Any = ctx.service
    state = service.projects.state(ctx.pid)
    return params_form.params_section(ctx.pid, state.params if state else {})


SECTIONS = [_training, _gallery, _map, _collection, _production, _versions, _selected, _curve, _params]


def project_page(service, pid: str, selected: str | None = None) -> str:
    ctx = PageContext.load(service, pid, selected)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    body = [
        f"<script src='{SIMILAR_SCRIPT_URL}'></script>"
        f"<nav class='small'><a href='/metrics'>all projects</a></nav><h1>tasveer · project {esc(pid)}</h1>"
        f"<p>serving <b id='serving'>{esc(str(ctx.serving))}</b> <span class='muted small'>{esc(now)}</span></p>"
    ]
    body += [section(ctx) for section in SECTIONS]
    return document(f"tasveer · project {pid}", "".join(body))

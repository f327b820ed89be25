"""The latest batch: thumbnails of the most recently imported tasks with the serving version's
predicted label and confidence, filtered and sorted in the page (static/page.js); each links to
its task in Label Studio. Images come through the backend (`task_image`), so Label Studio's token
stays with the backend and the browser never needs it.

A click on a photo (a plain click; a middle or modified click still opens Label Studio) shows the
similar-photos panel under the gallery (`similar_panel`, filled by static/similar.js from
api/similar_routes.py): the photo's nearest neighbours with their labels and predictions, boxes to
select some, a label and a person, and "Label these like this one"."""

from __future__ import annotations

import io

from backend.errors import NotFound, RequestError
from backend.fetch import FetchError
from backend.ui.html import esc
from lsproto.notes import waiting_version
from lsproto.results import newest_label, result_label
from training.images import ImageError, decode_image

BATCH = 36
THUMB = 256  # pixels, longest side


def _connected(service, pid: str):
    state = service.projects.state(pid)
    if state is None or not state.label_config:
        raise NotFound(f"project {pid} is not set up (no /setup yet)")
    return state, service.projects.config(state.label_config), service.projects.api(state)


def latest_batch(service, pid: str, n: int = BATCH) -> dict:
    """{"model_version", "labels", "items": [{task, image, link, label, confidence, labeled, error}]}"""
    state, cfg, api = _connected(service, pid)
    tasks = api.latest_tasks(int(pid), n)
    vid = service.serving.model_version(pid)
    predictions, missing = {}, []
    ours = (vid, waiting_version(vid)) if vid else (vid,)  # a waiting duplicate's too (lsproto/notes.py)
    for task in tasks:
        mine = [p for p in task.get("predictions") or [] if p.get("model_version") in ours and p.get("result")]
        if mine:
            predictions[task["id"]] = mine[-1]
        else:
            missing.append(task)
    if missing:  # not yet written back to Label Studio: ask the serving version (no training)
        for task, pred in zip(missing, service.predictor.predict(missing, project=pid)):
            predictions[task["id"]] = pred
    public = (state.hostname or api.base_url).rstrip("/")
    items = []
    for task in tasks:
        pred = predictions.get(task["id"]) or {}
        result = pred.get("result") or []
        label = result_label(result, cfg.from_name)
        confidence = result[0].get("score") if result and isinstance(result[0], dict) else None
        labeled = newest_label(task, cfg)
        items.append(
            {
                "task": task["id"],
                "image": f"/projects/{pid}/tasks/{task['id']}/image",
                "link": f"{public}/projects/{pid}/data?task={task['id']}",
                "label": label,
                "confidence": confidence if vid != "INITIAL" else None,
                "model_version": pred.get("model_version"),
                "labeled": labeled[1] if labeled else None,
                "error": pred.get("error"),
            }
        )
    return {"project": pid, "model_version": vid, "labels": list(cfg.labels), "items": items}


def task_image(service, pid: str, task_id: int) -> bytes:
    """A JPEG thumbnail of the task's image (the project's own task only)."""
    _, cfg, api = _connected(service, pid)
    task = api.project_task(int(pid), task_id)
    if task is None:
        raise NotFound(f"project {pid} has no task {task_id}")
    url = (task.get("data") or {}).get(cfg.data_key)
    if not isinstance(url, str):
        raise NotFound(f"task {task_id} has no {cfg.data_key!r} image")
    got = service.fetcher.fetch_many([(f"task {task_id}", url)], hostname=api.base_url, auth=api.auth)[0]
    if isinstance(got, FetchError):
        raise RequestError(str(got), status=502)
    try:
        img = decode_image(bytes(got), f"task {task_id}")
    except ImageError as exc:
        raise RequestError(str(exc), status=422) from None
    img.thumbnail((THUMB, THUMB))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=85)
    return out.getvalue()


def _colour(conf) -> str:
    if conf is None:
        return "#bbb"
    return "#1a7f37" if conf >= 0.8 else ("#d4a72c" if conf >= 0.5 else "#cf222e")


def gallery_section(batch: dict | None, error: str | None = None) -> str:
    head = "<h2>Latest batch</h2>"
    if error or batch is None:
        return head + f"<p class='err'>Cannot list the newest tasks: {esc((error or 'no batch')[:300])}</p>"
    items = batch["items"]
    if not items:
        return head + "<p class='muted'>No tasks imported yet.</p>"
    options = "".join(f"<option value='{esc(lab)}'>{esc(lab)}</option>" for lab in batch["labels"])
    out = [
        head,
        f"<p class='small muted'>the {len(items)} most recently imported tasks, predicted by "
        f"{esc(str(batch['model_version']))}</p>",
        "<p><label>predicted label <select id='gallery-filter'>"
        f"<option value=''>all</option>{options}</select></label> "
        "<label>sort <select id='gallery-sort'>"
        "<option value='uncertain'>least confident first</option>"
        "<option value='confident'>most confident first</option>"
        "<option value='newest'>newest first</option></select></label> "
        "<span id='gallery-count' class='small muted'></span> "
        "<span class='small muted'>click a photo for its most similar photos</span></p>",
        f"<div class='gallery' id='gallery' data-project='{esc(str(batch['project']))}'>",
    ]
    for i, it in enumerate(items):
        conf = it["confidence"]
        width = 0 if conf is None else round(100 * conf)
        label = esc(it["label"] or "no prediction")
        conf_text = "&ndash;" if conf is None else f"{conf:.0%}"
        labeled = (
            f"<div class='small'>labeled: {esc(it['labeled'])}</div>"
            if it["labeled"]
            else "<div class='small muted'>not labeled</div>"
        )
        title = esc(it["error"] or f"task {it['task']}")
        out.append(
            f"<a class='card' href='{esc(it['link'])}' target='_blank' rel='noopener' data-task='{it['task']}' "
            f"data-label='{esc(it['label'] or '')}' data-conf='{'' if conf is None else conf}' data-order='{i}' "
            f"title='{title}'><img loading='lazy' src='{esc(it['image'])}' alt='task {it['task']}'>"
            f"<div class='lab'><span class='pred'>{label}</span><span class='cv'>{conf_text}</span></div>"
            f"<svg class='conf' width='100%' height='4' aria-hidden='true'><rect width='{width}%' height='4' rx='2' "
            f"fill='{_colour(conf)}'/></svg>{labeled}</a>"
        )
    out.append("</div>")
    out.append(similar_panel())
    return "".join(out)


def similar_panel() -> str:
    """The similar-photos panel, hidden until a photo is clicked: static/similar.js fills #similar-cards
    (the photo and its neighbours, each with a box), the label and person selects, and answers in
    #similar-msg."""
    return (
        "<div id='similar' hidden><h3 id='similar-title'>Similar photos</h3>"
        "<p class='small' id='similar-info'></p><div class='gallery' id='similar-cards'></div>"
        "<p><label>label <select id='similar-label'></select></label> "
        "<label>as <select id='similar-annotator'></select></label> "
        "<button type='button' id='label-like' data-action='label-like'>Label these like this one</button> "
        "<button type='button' data-action='similar-close'>close</button></p>"
        "<p class='small' id='similar-msg'></p></div>"
    )

"""Label Studio project set-up: label config, idempotent project, ML backend connection, webhook check."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable
from typing import Any

from lsproto.config import build_label_config, parse_label_config, parse_labels
from lsproto.project import BACKEND_TITLE, WEBHOOK_ACTIONS, WEBHOOK_SECRET_HEADER

DEFAULT_LABELS = ("buildings", "forest", "glacier", "mountain", "sea", "street")
# `tasveer up --sampling` -> the project's `sampling` (projects/models.py SAMPLING_CHOICES). With
# "Uncertainty sampling", "Label All Tasks" serves, among tasks with a prediction of the project's
# model_version, the lowest prediction score (tasveer's: the confidence) first, spread over prediction
# clusters; "Label tasks as displayed" in the "Needs review" tab serves the tab's order, the project's
# acquisition strategy (lsproto/views.py).
SAMPLING = {"sequential": "Sequential sampling", "uniform": "Uniform sampling", "uncertainty": "Uncertainty sampling"}


class ProjectSetupError(RuntimeError):
    """The project or its ML backend connection is not as it must be."""


# show_collab_predictions makes LS ask the ML backend for a prediction when a task without one is
# opened (tasks/api.py TaskAPI.get). evaluate_predictions_automatically would also make every Data
# Manager page ask for the tasks it lists without one (data_manager/api.py); it stays OFF: the
# backend writes the predictions of new tasks itself (TASKS_CREATED), and LS's own answers, racing
# those, gave a task two predictions of one version (seen in the browser test).
PREDICTION_SETTINGS = {
    "evaluate_predictions_automatically": False,
    "show_collab_predictions": True,
}


def find_project(client, title: str):
    for project in client.projects.list(title=title):
        if project.title == title:
            return project
    return None


def ensure_project(
    client, title: str, labels: Iterable[str], *, update_config: bool = True, sampling: str = "uncertainty"
):
    """The project called `title`, created if missing. An existing one is reused (its id stays);
    its label config is replaced when the labels differ and `update_config` is set. Its sampling
    is set to `sampling` (a key of SAMPLING)."""
    if len(title.strip()) < 3:
        raise ValueError("Label Studio needs a project title of at least 3 characters")
    if sampling not in SAMPLING:
        raise ValueError(f"sampling must be one of {', '.join(SAMPLING)}; got {sampling!r}")
    labels = parse_labels(labels)
    config = build_label_config(labels)
    wanted = dict(PREDICTION_SETTINGS, sampling=SAMPLING[sampling])
    project = find_project(client, title)
    if project is None:
        project = client.projects.create(title=title, label_config=config, **wanted)
        return client.projects.get(id=project.id)
    project = client.projects.get(id=project.id)
    changes = {k: v for k, v in wanted.items() if _value(getattr(project, k, None)) != v}
    if update_config and _labels_of(project.label_config) != labels:
        changes["label_config"] = config
    if changes:
        client.projects.update(id=project.id, **changes)
        project = client.projects.get(id=project.id)
    return project


def _value(field):
    return getattr(field, "value", field)  # the SDK gives enums for choice fields


def _labels_of(config: str | None) -> list[str] | None:
    from lsproto.config import LabelConfigError

    if config is None:
        return None  # (no config: as an empty one)
    try:
        return list(parse_label_config(config).labels)
    except LabelConfigError:
        return None


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def connect_backend(
    client,
    project,
    url: str,
    *,
    title: str = BACKEND_TITLE,
    interactive: bool = False,
    timeout: float = 100.0,
    model_version: str | None = None,
    connect_wait: float = 30.0,
    basic_auth: tuple[str, str] | None = None,
):
    """Create or update the project's ML backend connection to `url`.

    * "start training on annotation submission" ON (project `min_annotations_to_start_training=1`,
      what the UI toggle `start_training_on_annotation_update` writes): every submitted/updated
      annotation makes LS call the backend's train(), i.e. a START_TRAINING webhook.
    * `is_interactive` (interactive pre-annotations from the labeling UI) only when asked: the
      backend predicts whole images, so the default is off.
    * evaluate_predictions_automatically + show_collab_predictions ON (see PREDICTION_SETTINGS).
    * `model_version`: the project's model_version (which predictions LS shows). None keeps what LS
      sets on connection (the backend title), "" shows predictions of every version.

    LS creates the `<url>/webhook` webhook only when an ML backend is *created* (ml/models.py
    create_ml_webhook), so a backend whose URL changed is re-created rather than patched.
    * `basic_auth` (user, password): what the backend requires (TASVEER_BASIC_AUTH_*); LS sends it
      with /health, /setup and /predict (its auth_method BASIC_AUTH). Its webhook does not: see
      `secure_webhook`.
    Returns the ML backend object as LS reports it after connecting (state "CO" = connected).
    """
    auth = _auth_fields(basic_auth)
    project_id = project.id if hasattr(project, "id") else int(project)
    backend = _ensure_backend(client, project_id, url, title=title, interactive=interactive, timeout=timeout, auth=auth)
    _apply_project_settings(client, project_id, url, model_version)
    return _wait_connected(client, backend, url, connect_wait)


def _auth_fields(basic_auth: tuple[str, str] | None) -> dict[str, Any]:
    if not basic_auth:
        return {}
    return {"auth_method": "BASIC_AUTH", "basic_auth_user": basic_auth[0], "basic_auth_pass": basic_auth[1]}


def _ensure_backend(
    client, project_id: int, url: str, *, title: str, interactive: bool, timeout: float, auth: dict[str, Any]
):
    """The project's one ML backend at `url`: others are deleted, a missing one is created, a
    kept one is updated when its title, interactivity or credentials are to change."""
    backend = None
    for ml in list(client.ml.list(project=project_id)):
        if _same_url(ml.url, url) and backend is None:
            backend = ml
        else:
            client.ml.delete(id=ml.id)  # another URL: its webhook would point elsewhere
    if backend is None:
        return _create_backend(
            client, project_id, url.rstrip("/"), title=title, is_interactive=interactive, timeout=timeout, **auth
        )
    if backend.is_interactive != interactive or backend.title != title or auth:
        # LS 1.23.2 validates a PATCH by calling the backend with the fields sent only: name its url too
        backend = client.ml.update(
            id=backend.id, url=backend.url, project=project_id, is_interactive=interactive, title=title, **auth
        )
    return backend


def _apply_project_settings(client, project_id: int, url: str, model_version: str | None) -> None:
    """Training on submission, PREDICTION_SETTINGS, the model_version asked for and the page link."""
    settings: dict[str, Any] = dict(PREDICTION_SETTINGS, min_annotations_to_start_training=1)
    if model_version is not None:
        settings["model_version"] = model_version
    current = client.projects.get(id=project_id).description
    settings["description"] = with_page_link(current, url, project_id)
    client.projects.update(id=project_id, **settings)


def _wait_connected(client, backend, url: str, connect_wait: float):
    """GET /api/ml/<id> makes LS run the backend's /health + /setup and store the state; a backend
    that is still loading may miss LS's 3 s /setup timeout once, so ask again for a while."""
    deadline = time.monotonic() + connect_wait
    while True:
        backend = client.ml.get(id=backend.id)
        if _state(backend) == "CO" or time.monotonic() >= deadline:
            break
        time.sleep(2.0)
    if _state(backend) != "CO":
        raise ProjectSetupError(
            f"Label Studio cannot use the ML backend at {url}: state {_state(backend)}, "
            f"error {backend.error_message or '(none)'}"
        )
    return backend


PAGE_LINK = "Model page: "


def with_page_link(description: str | None, backend_url: str, project_id: int) -> str:
    """The project's description with one line linking the backend's model page (replacing an
    older such line; the rest of what a person wrote stays)."""
    lines = [line for line in (description or "").splitlines() if not line.startswith(PAGE_LINK)]
    lines.append(f"{PAGE_LINK}{backend_url.rstrip('/')}/projects/{project_id}/page")
    return "\n".join(lines).strip()


def _state(ml) -> str:
    """'CO' connected, 'DI' disconnected, 'ER' error, 'TR' training, 'PR' predicting."""
    state = ml.state
    return str(getattr(state, "value", state))


def api_error_text(exc: Exception) -> str:
    """The useful part of an SDK ApiError (LS's validation messages), else str(exc)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        errors = body.get("validation_errors") or body.get("detail") or body
        if isinstance(errors, dict):
            return "; ".join(" ".join(map(str, v)) if isinstance(v, list) else str(v) for v in errors.values())
        return str(errors)
    return str(body if body is not None else exc)[:500]


def _create_backend(client, project_id: int, url: str, *, attempts: int = 3, **fields):
    """POST /api/ml. LS validates by calling the backend's /health (1 s timeout) and /setup (3 s)
    before saving; a backend warming up on its first /setup may miss that, so retry a little."""
    from label_studio_sdk.core.api_error import ApiError

    for attempt in range(1, attempts + 1):
        try:
            return client.ml.create(project=project_id, url=url, auto_update=True, **fields)
        except ApiError as exc:
            text = api_error_text(exc)
            if attempt < attempts and "timed out" in text.lower():
                time.sleep(2.0)
                continue
            raise ProjectSetupError(f"Label Studio refused to connect the ML backend at {url}: {text}") from None


def find_webhook(client, project_id: int, backend_url: str):
    target = backend_url.rstrip("/") + "/webhook"
    for hook in client.webhooks.list(project=str(project_id)):
        if _same_url(hook.url, target) and hook.project == project_id:
            return hook
    return None


def verify_webhook(client, project_id: int, backend_url: str, *, wait: float = 5.0):
    """The webhook LS auto-creates for the backend must exist, be active and send payloads.

    LS drops it *silently* when its SSRF check refuses the URL (ml/models.py create_ml_webhook
    only saves when the serializer is valid), hence this check. Returns the webhook; its
    `send_for_all_actions` is True (LS creates it so), i.e. it carries TASKS_CREATED,
    ANNOTATION_CREATED/UPDATED, ... and also START_TRAINING goes to `/webhook` (train API)."""
    deadline = time.monotonic() + wait
    while True:
        hook = find_webhook(client, project_id, backend_url)
        if hook is not None or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    if hook is None:
        raise ProjectSetupError(
            f"Label Studio did not create the webhook {backend_url.rstrip('/')}/webhook for project "
            f"{project_id}. Its SSRF protection probably refused the backend address: start Label "
            f"Studio with USE_DEFAULT_BANNED_SUBNETS=false and USER_ADDITIONAL_BANNED_SUBNETS "
            f"excluding the backend's subnet (tasveer up does this)."
        )
    if not hook.is_active or not hook.send_payload:
        raise ProjectSetupError(f"the webhook {hook.url} exists but is inactive or sends no payload")
    if not hook.send_for_all_actions and not hook.actions:
        raise ProjectSetupError(f"the webhook {hook.url} sends no actions")
    return hook


def webhook_actions(hook) -> str:
    """'all' or the actions a webhook sends, in name order ("ANNOTATION_CREATED, ...")."""
    return "all" if hook.send_for_all_actions else ", ".join(sorted(str(a) for a in (hook.actions or [])))


def webhook_headers(basic_auth: tuple[str, str] | None = None, secret: str | None = None) -> dict[str, str]:
    """The headers the backend's webhook must carry: its basic-auth credentials and shared secret."""
    headers = {}
    if basic_auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode()
    if secret:
        headers[WEBHOOK_SECRET_HEADER] = secret
    return headers


def secure_webhook(client, hook, *, basic_auth: tuple[str, str] | None = None, secret: str | None = None):
    """Make the webhook LS created for the backend (which has no headers and sends every action)
    carry what the backend requires (LS 1.23.2 webhooks have a `headers` field, sent with every
    call) and only the actions it acts on (lsproto.project WEBHOOK_ACTIONS). Returns the hook."""
    headers = webhook_headers(basic_auth, secret)
    change: dict = {}
    if headers and (hook.headers or {}) != headers:
        change["headers"] = headers
    if webhook_actions(hook) != ", ".join(sorted(WEBHOOK_ACTIONS)):
        change.update(send_for_all_actions=False, actions=list(WEBHOOK_ACTIONS))
    if change:
        client.webhooks.update(id=hook.id, **change)
        return client.webhooks.get(id=hook.id)
    return hook

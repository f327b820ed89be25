"""What the backend knows of each Label Studio project: its labeling config, training parameters
and connection (host + token), as `/setup` gave them; validated on the way in."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from backend.errors import NotFound, RequestError
from backend.inference.memo import Memo
from backend.projects.setupstate import ProjectState, StateStore
from backend.settings import Settings
from lsclient import open_client
from lsproto.config import LabelConfig, LabelConfigError, parse_label_config
from lsproto.project import ProjectIdError, parse_project
from lsproto.tokens import LSAuth
from lsproto.urls import same_origin
from training.params import ParamError, TrainParams

if TYPE_CHECKING:
    from lsclient.client import LabelStudioClient

log = logging.getLogger(__name__)


def parse_extra_params(extra) -> dict:
    """LS `extra_params` (null, a JSON object, or a JSON string of one) -> the parameters it sets,
    validated and normalised (defaults are not filled in: what a person set stays recognisable)."""
    if extra is None or extra == "" or extra == {}:
        return {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except (ValueError, RecursionError) as exc:
            raise ParamError(f"extra_params is not valid JSON ({exc})") from None
    if not isinstance(extra, dict):
        raise ParamError(f"extra_params must be a JSON object of training parameters; got {type(extra).__name__}")
    if not extra:
        return {}
    params = TrainParams.from_dict(extra)
    given = {k: v for k, v in params.to_dict().items() if k in extra}
    try:
        from training.backbones import check_model_name  # timm's model list
    except ImportError:  # a serving process without torch: the training worker checks the name
        return given
    try:
        check_model_name(params.model)
    except ValueError as exc:
        raise ParamError(str(exc)) from None
    return given


def is_http_url(value: str) -> bool:
    parts = urlsplit(value.strip())
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def project_id(value, status: int = 422) -> tuple[str, str | None]:
    """(id, creation stamp) of a project reference, or a RequestError with `status`."""
    try:
        return parse_project(value)
    except ProjectIdError as exc:
        raise RequestError(str(exc), status=status) from None


class Projects:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.states = StateStore(settings.data_dir / "projects")
        self._configs = Memo(limit=32)
        self._auths = Memo(limit=64)
        self._clients = Memo(limit=64)  # one connection pool per Label Studio and token

    @property
    def root(self):
        return self.states.root

    def ids(self) -> list[str]:
        return self.states.projects()

    def state(self, pid: str | None) -> ProjectState | None:
        return self.states.load(pid) if pid else None

    def config(self, xml: str) -> LabelConfig:
        """The parsed labeling config (cached); RequestError when tasveer cannot serve it."""
        try:
            return self._configs.get(xml, lambda: parse_label_config(xml))
        except LabelConfigError as exc:
            raise RequestError(f"labeling config not supported: {exc}") from None

    def setup(self, project, schema, hostname=None, access_token=None, extra_params=None) -> tuple[str, bool]:
        """Validate and remember what `/setup` says. Returns (project id, whether an older project
        of the same id was moved aside because Label Studio recreated it)."""
        pid, created = project_id(project)
        self.config(schema)
        try:
            params = parse_extra_params(extra_params)
        except ParamError as exc:
            raise RequestError(f"bad extra_params: {exc}") from None
        if hostname is not None and not isinstance(hostname, str):
            raise RequestError("hostname must be a string")
        if hostname and not is_http_url(hostname):
            raise RequestError(f"hostname must be Label Studio's http(s) URL; got {hostname[:100]!r}")
        if access_token is not None and not isinstance(access_token, str):
            raise RequestError("access_token must be a string")
        state = self.states.load(pid)
        retired = False
        if state is not None and created and state.created and state.created != created:
            log.warning("project %s was recreated (%s -> %s): starting it fresh", pid, state.created, created)
            self.states.retire(pid, state.created)
            state, retired = None, True
        old_host = state.hostname if state else None
        new_host = (hostname.rstrip("/") if hostname else None) or old_host
        # a token goes only to the origin it came with: a new host without its own token gets none
        keep_token = state is not None and (new_host == old_host or same_origin(new_host or "", old_host))
        new = ProjectState(
            project=pid,
            created=created or (state.created if state else None),
            hostname=new_host,
            token=access_token or (state.token if state is not None and keep_token else None),
            label_config=schema,
            params=params,
        )
        if not new.same_as(state):
            self.states.save(new)
        return pid, retired

    def set_params(self, pid: str, values) -> dict:
        """Replace the project's training parameters (validated like /setup's extra params) and
        write them to Label Studio's connection too. Returns the stored (explicit) parameters."""
        state = self.states.load(pid)
        if state is None:
            raise NotFound(f"project {pid} is not set up (no /setup yet)")
        try:
            params = parse_extra_params(values if values else {})
        except ParamError as exc:
            from backend.projects.paramcheck import ParamsRejected, field_errors

            raise ParamsRejected(f"bad parameters: {exc}", field_errors(values, parse_extra_params)) from None
        explicit = params
        if state.hostname:
            self.api(state).set_extra_params(int(pid), explicit)
        state.params = explicit
        self.states.save(state)
        return explicit

    def connection(self, state: ProjectState | None) -> tuple[str | None, str | None]:
        """(Label Studio URL, token) for a project: what /setup said, else the environment's. The
        environment's token (LABEL_STUDIO_API_KEY) goes only to the environment's LABEL_STUDIO_URL."""
        env_url, env_token = self.settings.label_studio_url, self.settings.label_studio_api_key
        hostname = ((state.hostname if state else None) or env_url or "").rstrip("/") or None
        token = state.token if state else None
        if not token and env_token and hostname and same_origin(hostname, env_url):
            token = env_token
        return hostname, token

    def auth(self, hostname: str, token: str | None) -> LSAuth:
        return self._auths.get((hostname, token), lambda: LSAuth(hostname, token))

    def api(self, state: ProjectState | None) -> LabelStudioClient:
        hostname, token = self.connection(state)
        if not hostname:
            raise RuntimeError(
                f"project {state.project if state else '?'}: no Label Studio URL "
                "(connect the backend in Label Studio, or set LABEL_STUDIO_URL)"
            )
        return self._clients.get((hostname, token), lambda: open_client(self.auth(hostname, token)))

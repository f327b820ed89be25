"""Who may use the backend, checked by rule on every route of the app's OpenAPI schema (a route
added later is walked without editing this file), in-process: a foreign Host is refused before any
work, no credentials means 401 (health aside), a cross-origin browser request that could change
something is a 403, every answer forbids framing, nothing outside the data dir is ever served; plus
the login link and its cookie, loopback-only without a secret, and errors that quote little."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.api.app import create_app
from backend.api.login import RedactToken
from backend.api.logintoken import cookie_name, link_token, session_value
from backend.settings import Settings, SettingsError
from imageserver import ImageServer
from test_backend_helpers import CONFIG

REPO = Path(__file__).resolve().parents[1]
SECRET = "route-rules-secret-0123456789"
HOME = "127.0.0.1:9090"  # the Host the clients below send
PUBLIC = "tasveer.example.org"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"tasveer:{SECRET}".encode()).decode()}
JSON = {"Content-Type": "application/json"}
FOREIGN_HOSTS = [
    "evil.example",
    "evil.example:9090",
    "127.0.0.1.nip.io:9090",
    "localhost.evil.example",
    f"{PUBLIC}.evil.example",
    "[::2]:9090",
    "10.0.0.7:9090",
    "127.0.0.1:9090@evil.example",
    "evil.example/..",
    "x" * 5000,
]
CROSS_ORIGINS = [
    "http://evil.example",
    f"http://{HOME.split(':')[0]}:8080",
    "null",
    "http://localhost:9090",
    f"http://{PUBLIC}",
    "http://127.0.0.1:9090.evil.example",
    "file://",
    "not a url",
]
MARK = b"OUTSIDE-THE-DATA-DIR-7f3a"
OK_OR_REFUSED = {*range(200, 500), 502}  # 502: Label Studio (a stand-in here) has nothing


def operations(app) -> list[tuple[str, str]]:
    """(method, path template) of every route of the app, from its OpenAPI schema."""
    return [(method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in sorted(ops)]


def concrete(template: str, value: str = "1") -> str:
    return re.sub(r"\{[^}]+\}", value, template)


def is_health(method: str, template: str) -> bool:
    return method == "GET" and template in ("/health", "/")


class Tripwire:
    """Stands in for the `Backend`: any use means a route ran."""

    def __getattr__(self, name):
        raise AssertionError(f"a route used the backend ({name}) although the request was refused")


@contextmanager
def tripwired(client):
    """The client's app with a `Tripwire` for its `Backend` while the block runs."""
    state = client.app.state
    real, state.backend = state.backend, Tripwire()
    try:
        yield client
    finally:
        state.backend = real


@pytest.fixture(scope="module")
def label_studio_stand_in():
    """Answers 404 at once to whatever the backend asks Label Studio (a refused connection is retried)."""
    with ImageServer({}) as server:
        yield server.url


def _client(tmp_path_factory, ls_url: str = "http://127.0.0.1:9", **settings) -> TestClient:
    root = tmp_path_factory.mktemp("rules")
    app = create_app(Settings(data_dir=root / "backend", label_studio_url=ls_url, **settings))
    client = TestClient(app, base_url=f"http://{HOME}", raise_server_exceptions=False)
    client.root = root
    return client


@pytest.fixture(scope="module")
def guarded(tmp_path_factory, label_studio_stand_in):
    """The app with a secret (health behind the login too) and project 1 set up."""
    with _client(tmp_path_factory, label_studio_stand_in, secret=SECRET, public_hosts=(PUBLIC,)) as client:
        body = {"project": "1.1795492545", "schema": CONFIG, "hostname": label_studio_stand_in, "access_token": "t"}
        assert client.post("/setup", json=body, headers=AUTH).status_code == 200
        yield client


@pytest.fixture(scope="module")
def open_backend(tmp_path_factory):
    """The app without any login (loopback only), as tests and a bare `python -m backend` run it."""
    with _client(tmp_path_factory) as client:
        yield client


def call(client, method: str, path: str, headers: dict | None = None, **kwargs):
    return client.request(method, path, headers={**JSON, **(headers or {})}, content=b"{}", **kwargs)


def test_the_walk_sees_every_router(guarded):
    walked = {template for _, template in operations(guarded.app)}
    assert {
        "/health",
        "/setup",
        "/metrics",
        "/projects/{project}/page",
        "/projects/{project}/tasks/{task}/image",
        "/projects/{project}/params",
        "/logout",
    } <= walked
    assert len(walked) >= 20


@pytest.mark.parametrize("mode", ["guarded", "open_backend"])
def test_a_foreign_host_is_refused_before_any_work(mode, request):
    with tripwired(request.getfixturevalue(mode)) as client:
        foreign_hosts_refused(client)


def foreign_hosts_refused(client):
    for method, template in operations(client.app):
        for host in FOREIGN_HOSTS:
            r = call(client, method, concrete(template), {**AUTH, "Host": host})
            assert r.status_code in (400, 421), (method, template, host, r.status_code)
            assert len(r.content) < 600 and "x" * 120 not in r.text
        r = call(client, method, concrete(template), {**AUTH, "Host": ""})
        assert r.status_code == 400, (method, template)


def test_no_credentials_are_refused(guarded):
    garbage = session_value("another-secret-0123456789")
    expired = session_value(SECRET, now=0)
    wrong = [
        {},
        {"Authorization": "Basic " + base64.b64encode(b"tasveer:nope").decode()},
        {"Authorization": "Basic " + base64.b64encode(f"admin:{SECRET}".encode()).decode()},
        {"Authorization": "Basic !!!"},
        {"Authorization": f"Token {SECRET}"},
        {"Cookie": f"{cookie_name(9090)}={garbage}"},
        {"Cookie": f"{cookie_name(9090)}={expired}"},
        {"Cookie": f"{cookie_name(8080)}={session_value(SECRET)}"},
    ]  # another port's login
    for method, template in operations(guarded.app):
        for headers in wrong:
            r = call(guarded, method, concrete(template), headers)
            assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic"), (
                method,
                template,
                headers,
                r.status_code,
            )
        # a token is exchanged by a GET only, never taken as a credential
        if method != "GET":
            r = call(guarded, method, concrete(template) + "?token=" + link_token(SECRET))
            assert r.status_code == 401, (method, template)


def test_health_alone_may_be_open(tmp_path_factory):
    with _client(tmp_path_factory, secret=SECRET, open_health=True) as client:
        for method, template in operations(client.app):
            r = call(client, method, concrete(template))
            assert (r.status_code == 200) if is_health(method, template) else (r.status_code == 401), (method, template)


@pytest.mark.parametrize("mode", ["guarded", "open_backend"])
def test_a_cross_origin_browser_request_cannot_change_anything(mode, request):
    with tripwired(request.getfixturevalue(mode)) as client:
        cross_origins_refused(client)


def cross_origins_refused(client):
    changing = [(m, t) for m, t in operations(client.app) if m not in ("GET", "HEAD", "OPTIONS")]
    assert {"POST", "PUT"} <= {m for m, _ in changing}
    for method, template in changing:
        for origin in CROSS_ORIGINS:
            r = call(client, method, concrete(template), {**AUTH, "Origin": origin})
            assert r.status_code == 403, (method, template, origin, r.status_code)
        for site in ("cross-site", "same-site"):
            r = call(client, method, concrete(template), {**AUTH, "Sec-Fetch-Site": site})
            assert r.status_code == 403, (method, template, site)


def test_every_route_answers_its_own_origin_with_credentials(guarded):
    """The control: logged in (basic auth, or the link's cookie), from this origin or the public name,
    every route does its work; every answer forbids framing and sniffing."""
    guarded.cookies.clear()
    login = guarded.get("/metrics?token=" + link_token(SECRET))
    cookie = {"Cookie": f"{cookie_name(9090)}={login.cookies[cookie_name(9090)]}"}
    guarded.cookies.clear()
    for method, template in operations(guarded.app):
        if template == "/logout":
            continue
        for headers in (
            AUTH,
            {**cookie, "Origin": f"http://{HOME}", "Sec-Fetch-Site": "same-origin"},
            {**AUTH, "Host": f"{PUBLIC}:8443", "Origin": f"https://{PUBLIC}:8443"},
        ):
            r = call(guarded, method, concrete(template), headers)
            assert r.status_code not in (401, 403, 421) and (r.status_code < 500 or r.status_code == 502), (
                method,
                template,
                r.status_code,
                r.text,
            )  # 502: Label Studio (not running here) is needed
            assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"], (method, template)
            assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"


def test_the_model_page_policy_loads_nothing_from_elsewhere(guarded):
    r = guarded.get("/projects/1/page", headers=AUTH)
    assert r.status_code == 200 and "<h1>" in r.text
    policy = dict(part.strip().split(" ", 1) for part in r.headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert policy["base-uri"] == "'none'" and policy["form-action"] == "'self'" and policy["connect-src"] == "'self'"
    assert not any(re.search(r"https?:|\*", value) for value in policy.values()), policy


def test_nothing_is_served_from_outside_the_data_dir(guarded):
    outside = guarded.root / "outside"
    outside.mkdir()
    for name in ("confusion.png", "secret.png", "export.zip", "manifest.json", "SERVING", "image.jpg", "state.json"):
        (outside / name).write_bytes(MARK)
    payloads = [
        p
        for depth in range(1, 9)
        for p in ("../" * depth + "outside", "..%2F" * depth + "outside", "..%2F" * depth + "outside%2Fsecret.png")
    ]
    payloads += ["..", "%2e%2e", str(outside).replace("/", "%2F"), str(outside / "secret.png").replace("/", "%2F")]
    for method, template in operations(guarded.app):
        names = re.findall(r"\{([^}]+)\}", template)
        for name in names:
            for payload in payloads:
                path = template.replace("{" + name + "}", payload)
                r = call(guarded, method, concrete(path), AUTH)
                assert MARK not in r.content and r.status_code in OK_OR_REFUSED, (method, path, r.status_code)
        if method == "GET":
            for payload in payloads:
                for query in ("project", "version", "vid"):
                    r = guarded.get(concrete(template), params={query: payload.replace("%2F", "/")}, headers=AUTH)
                    assert MARK not in r.content and r.status_code in OK_OR_REFUSED, (template, query, payload)


def test_the_login_link_gives_a_strict_httponly_cookie_once(guarded):
    guarded.cookies.clear()
    token = link_token(SECRET)
    r = guarded.get(f"/projects/1/page?version=v0001&token={token}", headers={"Accept": "text/html"})
    assert r.status_code == 200 and token not in r.text
    assert "url=/projects/1/page?version=v0001'" in r.text  # goes on to the page, without the token
    cookie = r.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=strict", "Max-Age=604800", "Path=/"):
        assert attribute.lower() in cookie.lower(), cookie
    assert "secure" not in cookie.lower()  # plain http on loopback; https gets Secure
    value = r.cookies[cookie_name(9090)]
    guarded.cookies.clear()
    page = guarded.get("/projects/1/page", headers={"Cookie": f"{cookie_name(9090)}={value}"})
    assert page.status_code == 200 and "<h1>" in page.text
    # a wrong token logs nobody in, and a page without a login says how to log in
    for bad in ("", "x", token[:-1], token + "x", link_token("another-secret-0123456789")):
        r = guarded.get(f"/projects/1/page?token={bad}", headers={"Accept": "text/html"})
        assert r.status_code == 401 and "set-cookie" not in r.headers, bad
    r = guarded.get("/projects/1/page", headers={"Accept": "text/html"})
    assert r.status_code == 401 and "tasveer up" in r.text and r.headers["content-type"].startswith("text/html")
    # the link never leads off this origin
    r = guarded.get(type(guarded.base_url)(f"http://{HOME}", raw_path=f"//evil.example/x?token={token}".encode()))
    assert r.status_code == 200 and "url=/evil.example/x'" in r.text
    # logging out ends the cookie
    out = guarded.get("/logout", headers={"Cookie": f"{cookie_name(9090)}={value}"})
    assert out.status_code == 200 and "max-age=0" in out.headers["set-cookie"].lower()
    guarded.cookies.clear()


def test_without_a_login_the_backend_listens_on_loopback_only(tmp_path, open_backend):
    for host in ("0.0.0.0", "::", "192.168.1.5", "example.org"):
        with pytest.raises(SettingsError, match="TASVEER_SECRET"):
            create_app(Settings(data_dir=tmp_path, host=host))
    create_app(Settings(data_dir=tmp_path, host="0.0.0.0", secret=SECRET)).state.backend.close()
    env = {"TASVEER_HOST": "0.0.0.0", "TASVEER_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "backend"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and "TASVEER_SECRET" in proc.stderr and "Traceback" not in proc.stderr
    # on loopback without a login every route answers, Host and Origin rules still hold (above)
    assert open_backend.get("/projects/1/jobs").status_code != 401


def test_errors_quote_at_most_about_200_characters_of_what_they_got(guarded):
    big = "A" * 5_000_000
    cases = [
        ("POST", "/webhook", {"action": big}),
        ("POST", "/webhook", {"action": big, "project": {"id": 1}}),
        ("PUT", "/projects/1/params", {"model": big}),
        ("PUT", "/projects/1/params", {big[:300000]: 1}),
        ("POST", "/setup", {"project": "1.1", "schema": CONFIG, "hostname": big}),
        ("POST", "/projects/1/train", {"preset": big}),
        ("POST", "/job_status", {"job": big}),
        ("POST", "/projects/1/rollback", {"version": big}),
        ("POST", "/setup", {"project": big, "schema": big}),
    ]
    for method, path, body in cases:
        r = guarded.request(method, path, json=body, headers=AUTH)
        assert r.status_code < 500 and len(r.content) < 2000, (method, path, r.status_code, len(r.content))
        assert "A" * 300 not in r.text, (method, path)
    r = guarded.get("/versions", params={"project": big[:20000]}, headers=AUTH)
    assert len(r.content) < 2000


def test_the_access_log_never_shows_a_login_token():
    import logging

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/projects/1/page?version=v1&token=SEKRET&x=1", "1.1", 200),
        None,
    )
    RedactToken().filter(record)
    assert "SEKRET" not in record.getMessage() and "version=v1" in record.getMessage()

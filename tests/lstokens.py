"""Test helpers that make Label Studio tokens and logged-in sessions the way a person would
(the token *rules* live in lsproto.tokens; nothing in the product creates tokens).

* Legacy token: `Authorization: Token <key>` (needs the organization's legacy_api_tokens_enabled).
* PAT: created by POST /api/token/ (one live PAT per user; the org's api_tokens_enabled must be on,
  settable at POST /api/jwt/settings). A PAT is a *refresh* token: POST /api/token/refresh/
  {"refresh": PAT} -> {"access": JWT}, used as `Authorization: Bearer <access>` (it expires after
  a few minutes; exchange again).
"""

from __future__ import annotations

import requests

from lsproto.tokens import TokenError, auth_header


def enable_token_kinds(url: str, legacy_token: str, *, pat: bool = True, legacy: bool = True) -> dict:
    resp = requests.post(
        f"{url}/api/jwt/settings",
        headers=auth_header(legacy_token),
        timeout=10,
        json={"api_tokens_enabled": pat, "legacy_api_tokens_enabled": legacy},
    )
    if resp.status_code != 200:
        raise TokenError(f"cannot change the organization's token settings: HTTP {resp.status_code} {resp.text[:200]}")
    return resp.json()


def create_personal_access_token(url: str, legacy_token: str) -> str:
    """A new PAT for the user behind `legacy_token` (PATs get enabled in the organization first)."""
    enable_token_kinds(url, legacy_token)
    resp = requests.post(f"{url}/api/token/", headers=auth_header(legacy_token), timeout=10)
    if resp.status_code not in (200, 201):
        raise TokenError(
            f"Label Studio refused to create a personal access token (a user has at most "
            f"one): HTTP {resp.status_code} {resp.text[:200]}"
        )
    return resp.json()["token"]


def browser_session(url: str, email: str, password: str, *, signup: bool = False) -> requests.Session:
    """A logged-in session like a browser's (cookie + CSRF header), via /user/login/ or, with
    `signup`, /user/signup/ (open in LS Community unless DISABLE_SIGNUP_WITHOUT_LINK; the new user
    joins the first organization)."""
    page = "/user/signup/" if signup else "/user/login/"
    session = requests.Session()
    session.get(f"{url}{page}", timeout=30)
    csrf = session.cookies.get("csrftoken", "")
    resp = session.post(
        f"{url}{page}",
        timeout=30,
        allow_redirects=False,
        data={"email": email, "password": password, "csrfmiddlewaretoken": csrf},
        headers={"Referer": f"{url}{page}"},
    )
    if resp.status_code != 302 or "sessionid" not in session.cookies:
        raise TokenError(f"{'sign-up' if signup else 'login'} as {email} failed: HTTP {resp.status_code}")
    session.headers.update({"X-CSRFToken": session.cookies.get("csrftoken", csrf), "Referer": url})
    return session


def session_personal_access_token(url: str, session: requests.Session) -> str:
    """Create the PAT of the user logged in on `session`."""
    resp = session.post(f"{url}/api/token/", timeout=30)
    if resp.status_code not in (200, 201):
        raise TokenError(
            f"Label Studio refused to create a personal access token: HTTP {resp.status_code} {resp.text[:200]}"
        )
    return resp.json()["token"]

"""Kinds of image URL found in task data, and how each resolves against a Label Studio host.

* `/data/upload/<project>/<file>`: a file uploaded through the import dialog (served by LS, needs auth);
* `/data/local-files/?d=<path>`: a file from LS's local-files storage (served by LS, needs auth);
* `http://...`, `https://...`: absolute URLs, fetched as they are (LS's own host or an allowed one);
* `s3://`, `gs://`, `azure-blob://`, `gcs://`: cloud storage URIs (tasks of a cloud source storage);
  only LS can resolve them: `<LS>/projects/<id>/resolve/?fileuri=<base64url>` (io_storages/proxy_api.py)
  answers with the bytes (storage with `presign` off: LS proxies them) or a 303 to a presigned URL.
"""

from __future__ import annotations

import base64
from urllib.parse import quote, urljoin, urlsplit

UPLOAD, LOCAL_FILES, HTTP, CLOUD, OTHER = "upload", "local-files", "http", "cloud", "other"
CLOUD_SCHEMES = ("s3", "gs", "gcs", "azure-blob", "azure-spi")
UPLOAD_PREFIX = "/data/upload/"


def url_kind(raw: str) -> str:
    parts = urlsplit(raw.strip())
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return HTTP
    if scheme in CLOUD_SCHEMES:
        return CLOUD
    if scheme == "" and not parts.netloc and parts.path.startswith(UPLOAD_PREFIX):
        return UPLOAD
    if scheme == "" and not parts.netloc and parts.path.startswith("/data/local-files"):
        return LOCAL_FILES
    return OTHER


def resolve(raw: str, hostname: str | None, project=None) -> str:
    """The absolute URL to download `raw` from. ValueError (with the reason) when it cannot be.
    A cloud URI needs the project it belongs to (Label Studio resolves it with that project's storage)."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"image URL is empty or not a string: {raw!r}")
    raw = raw.strip()
    kind = url_kind(raw)
    if kind == HTTP:
        return raw
    if kind in (UPLOAD, LOCAL_FILES) or (kind == OTHER and raw.startswith("/") and not raw.startswith("//")):
        if not hostname:
            raise ValueError(
                f"{raw}: relative URL but no Label Studio hostname is known "
                "(connect the backend in Label Studio, or set LABEL_STUDIO_URL)"
            )
        return urljoin(hostname.rstrip("/") + "/", raw.lstrip("/"))
    if kind == CLOUD and hostname and str(project or "").isdigit():
        fileuri = base64.urlsafe_b64encode(raw.encode()).decode()
        return f"{hostname.rstrip('/')}/projects/{int(project)}/resolve/?fileuri={quote(fileuri)}"
    if kind == CLOUD:
        raise ValueError(
            f"{raw}: unsupported URL (a cloud storage URI, which only Label Studio can resolve; "
            "use uploads, local files or http(s) URLs)"
        )
    raise ValueError(f"{raw}: unsupported URL (only http(s) and Label Studio /data/ paths)")


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, lower-case host, port with the scheme's default filled in)."""
    parts = urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:  # a port out of range or not a number
        port = -1
    return parts.scheme, (parts.hostname or "").lower(), port


def same_origin(url: str, base: str | None) -> bool:
    if not base:
        return False
    return origin(url) == origin(base)

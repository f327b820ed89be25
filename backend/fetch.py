"""Download task images (bytes only; decoding belongs to `training`).

* `/data/upload/...` and `/data/local-files/?d=...` are resolved against the Label Studio hostname;
  absolute `http(s)` URLs are fetched as they are. Cloud URIs (`s3://`, `gs://`, ... : tasks of a
  Label Studio cloud source storage) are asked of Label Studio's `/projects/<id>/resolve/` (with the
  token, LS's origin), which sends the bytes or a redirect to a presigned URL; that hop carries no
  token and its host must be allowed like any other (`TASVEER_ALLOWED_HOSTS`, e.g. the bucket's
  endpoint), or turn "presign" off in the storage so that LS proxies the bytes. Other schemes are refused.
* Downloads go only to the Label Studio host, plus hosts listed in `TASVEER_ALLOWED_HOSTS`
  (`host` = any port, `host:port` = that port). Redirects are followed by hand (at most 5), each
  hop checked the same way; the Label Studio token is sent to the Label Studio host only.
* Every download is streamed and aborted past `max_image_bytes` or `fetch_timeout` seconds. A host
  that cannot be reached, a broken connection, 5xx or 429 is tried again with backoff
  (RETRY_WAITS) within that same time; then the task gets its error.
* When the backend shares Label Studio's disk (`TASVEER_LS_MEDIA_DIR` = LS's `<data dir>/media`, set
  by `tasveer up`), a `/data/upload/<project>/<file>` of the Label Studio host is read from
  `<media>/upload/<project>/<file>` instead of asking LS to serve it over HTTP (which costs LS's
  CPU for every image); a file that is not there is downloaded as usual.
* Downloaded bytes are kept in the disk cache (`BlobCache`, blobcache.py), so a training never
  downloads an image twice; the bytes handed on carry their sha256 (`training.cache.Digested`).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

from backend.blobcache import BlobCache
from lsproto import urls
from lsproto.tokens import LSAuth, TokenError
from training.cache import Digested

MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
log = logging.getLogger(__name__)


class FetchError(Exception):
    """One image could not be downloaded; the message names the task and the URL."""


class TransientFetchError(FetchError):
    """A failure worth another try: the host was unreachable, the connection broke, or it answered
    5xx or 429 (Label Studio restarting, its SQLite locked)."""


RETRY_WAITS = (0.25, 0.5, 1.0, 2.0, 4.0)  # seconds between tries, within the download's deadline


class ImageFetcher:
    """Fetches task images for one backend process. Holds a small thread pool and the blob cache."""

    def __init__(
        self,
        cache: BlobCache,
        *,
        max_bytes: int,
        timeout: float,
        workers: int = 8,
        allowed_hosts: tuple[str, ...] = (),
        media_dir: str | Path | None = None,
    ):
        self.cache = cache
        self.media_dir = Path(media_dir).resolve() if media_dir else None
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.allowed_hosts = tuple(h.lower() for h in allowed_hosts)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch")
        self._local = threading.local()
        self.downloads = 0  # network downloads done (cache misses); read by tests and /metrics
        self._count_lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- URL policy -------------------------------------------------------------------------------
    def resolve(self, raw: str, hostname: str | None, name: str = "image", project=None) -> str:
        try:
            return urls.resolve(raw, hostname, project)
        except ValueError as exc:
            raise FetchError(f"{name}: {exc}") from None

    def is_ls_host(self, url: str, hostname: str | None) -> bool:
        return urls.same_origin(url, hostname)

    def is_allowed(self, url: str, hostname: str | None) -> bool:
        if self.is_ls_host(url, hostname):
            return True
        _, host, port = urls.origin(url)
        return host in self.allowed_hosts or f"{host}:{port}" in self.allowed_hosts

    # -- download ---------------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = "tasveer-backend"
            self._local.session = session
        return session

    def fetch(self, raw: str, *, hostname: str | None, auth: LSAuth | None, name: str = "image", project=None) -> bytes:
        """Bytes of one image, from the cache or the network, as a `training.cache.Digested` (bytes
        carrying their sha256, so nothing downstream hashes them again). Raises FetchError naming
        `name` and URL."""
        url = self.resolve(raw, hostname, name, project)
        cached = self.cache.get(url)
        if cached is not None:
            return cached
        data = self._read_shared(raw, url, hostname, name)
        if data is None:
            try:
                data = self._download_retrying(url, hostname=hostname, auth=auth, name=name)
            except FetchError as exc:
                if urls.url_kind(raw) != urls.CLOUD:
                    raise
                raise FetchError(f"{exc} (the cloud storage URI {raw}, asked of Label Studio)") from None
        try:
            digest = self.cache.put(url, data)  # hashed once: the embedder reuses the digest
        except (OSError, sqlite3.Error) as exc:  # a full or read-only disk costs the cache, not the image
            log.warning("image cache: cannot store %s (%s)", url, exc)
            digest = hashlib.sha256(data).hexdigest()
        return Digested(data, digest)

    def _download_retrying(self, url: str, *, hostname: str | None, auth: LSAuth | None, name: str) -> bytes:
        """`_download`, tried again with backoff after a transient failure while time is left."""
        deadline = time.monotonic() + self.timeout
        for wait in (*RETRY_WAITS, None):
            try:
                return self._download(url, hostname=hostname, auth=auth, name=name, deadline=deadline)
            except TransientFetchError as exc:
                if wait is None or time.monotonic() + wait >= deadline:
                    raise FetchError(str(exc)) from None
                log.info("%s; trying again in %.2f s", exc, wait)
                time.sleep(wait)
        raise AssertionError("unreachable: the last try (wait None) returns or raises")

    def _read_shared(self, raw: str, url: str, hostname: str | None, name: str) -> bytes | None:
        """The upload's bytes straight from Label Studio's media dir, or None (then download)."""
        if self.media_dir is None or not self.is_ls_host(url, hostname):
            return None
        path = urlsplit(url).path
        if not path.startswith("/data/upload/") or urlsplit(url).query:
            return None
        local = (self.media_dir / "upload" / path[len("/data/upload/") :]).resolve()
        if self.media_dir / "upload" not in local.parents or not local.is_file():
            return None  # outside the media dir (../ tricks) or not there: let LS decide
        size = local.stat().st_size
        if size > self.max_bytes:
            raise FetchError(f"{name}: {raw}: {size} bytes is over the {self.max_bytes}-byte limit")
        return local.read_bytes()

    def _download(self, url: str, *, hostname: str | None, auth: LSAuth | None, name: str, deadline: float) -> bytes:
        """One download of `url`: redirects followed by hand (each hop checked like the first one),
        Label Studio's token refreshed once on a 401. TransientFetchError when another try may help."""
        current, redirects, refreshed = url, 0, False
        while True:
            with self._get(current, url, hostname=hostname, auth=auth, name=name, deadline=deadline) as resp:
                if resp.status_code in REDIRECTS and resp.headers.get("Location"):
                    redirects += 1
                    if redirects > MAX_REDIRECTS:
                        raise FetchError(f"{name}: {url}: more than {MAX_REDIRECTS} redirects")
                    current = urljoin(current, resp.headers["Location"])
                    continue
                if (
                    resp.status_code == 401
                    and auth is not None
                    and not refreshed
                    and self.is_ls_host(current, hostname)
                ):
                    refreshed = True
                    if _refresh_token(auth, f"{name}: {current}"):
                        continue
                self._check_answer(resp, f"{name}: {current}")
                data = self._read_body(resp, f"{name}: {current}", deadline)
            with self._count_lock:
                self.downloads += 1
            return data

    def _get(
        self, current: str, url: str, *, hostname: str | None, auth: LSAuth | None, name: str, deadline: float
    ) -> requests.Response:
        """The streamed answer to one hop (`current`) of `url`'s download, unless its host is not
        allowed or no time is left; the token goes to the Label Studio host only."""
        if not self.is_allowed(current, hostname):
            raise FetchError(
                f"{name}: {current}: host not allowed (only the Label Studio host "
                f"{hostname or '(unknown)'} and TASVEER_ALLOWED_HOSTS)"
            )
        headers = {}
        if auth is not None and self.is_ls_host(current, hostname):
            try:
                headers.update(auth.headers())
            except TokenError as exc:
                raise FetchError(f"{name}: {current}: {exc}") from None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError(f"{name}: {url}: timed out after {self.timeout:g} s")
        try:
            return self._session().get(
                current,
                headers=headers,
                stream=True,
                allow_redirects=False,
                timeout=(min(remaining, 5.0), remaining),
            )
        except requests.RequestException as exc:
            raise TransientFetchError(f"{name}: {current}: download failed ({exc})") from None

    def _check_answer(self, resp: requests.Response, where: str) -> None:
        """FetchError unless the answer is a 200 of at most `max_bytes` declared (5xx and 429:
        TransientFetchError)."""
        if resp.status_code >= 500 or resp.status_code == 429:
            raise TransientFetchError(f"{where}: HTTP {resp.status_code} {resp.reason or ''}".rstrip())
        if resp.status_code != 200:
            raise FetchError(f"{where}: HTTP {resp.status_code} {resp.reason or ''}".rstrip())
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(f"{where}: {declared} bytes is over the {self.max_bytes}-byte limit")

    def _read_body(self, resp: requests.Response, where: str, deadline: float) -> bytes:
        """The answer's body, aborted past `max_bytes` or the deadline."""
        chunks, total = [], 0
        try:
            for chunk in resp.iter_content(chunk_size=65536):
                total += len(chunk)
                if total > self.max_bytes:
                    raise FetchError(f"{where}: more than {self.max_bytes} bytes, download aborted")
                if time.monotonic() > deadline:
                    raise FetchError(f"{where}: timed out after {self.timeout:g} s")
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise FetchError(f"{where}: download failed ({exc})") from None
        return b"".join(chunks)

    def fetch_many(
        self, items: list[tuple[str, str]], *, hostname: str | None, auth: LSAuth | None, project=None
    ) -> list[bytes | FetchError]:
        """Fetch [(name, url)] concurrently; each slot holds the bytes or the FetchError."""

        def one(item):
            name, raw = item
            try:
                return self.fetch(raw, hostname=hostname, auth=auth, name=name, project=project)
            except FetchError as exc:
                return exc
            except Exception as exc:  # never let one image break the batch
                return FetchError(f"{name}: {raw}: {type(exc).__name__}: {exc}")

        if len(items) <= 1:
            return [one(item) for item in items]
        return list(self._pool.map(one, items))


def _refresh_token(auth: LSAuth, where: str) -> bool:
    """Whether Label Studio's access token was refreshed (so the request is worth sending again)."""
    try:
        return auth.refresh()
    except TokenError as exc:
        raise FetchError(f"{where}: {exc}") from None

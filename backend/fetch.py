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
* Downloaded bytes are cached on disk, content-addressed (`blobs/ab/abcdef...`), with an
  URL -> (content hash, size) map in SQLite, so a training never downloads an image twice. Each
  image is hashed once, when it is stored; the bytes handed on carry that digest
  (`training.cache.Digested`), which the embedding cache key reuses. Label Studio
  upload URLs carry a random prefix and never change content; for other URLs the first download
  wins until the cache directory is removed.
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

from lsproto import urls
from lsproto.tokens import LSAuth, TokenError
from training.atomic import write_atomic
from training.cache import Digested, known_hash

MAX_REDIRECTS = 5
log = logging.getLogger(__name__)


class FetchError(Exception):
    """One image could not be downloaded; the message names the task and the URL."""


class TransientFetchError(FetchError):
    """A failure worth another try: the host was unreachable, the connection broke, or it answered
    5xx or 429 (Label Studio restarting, its SQLite locked)."""


RETRY_WAITS = (0.25, 0.5, 1.0, 2.0, 4.0)  # seconds between tries, within the download's deadline


class BlobCache:
    """Content-addressed bytes on disk plus a URL -> sha256 map. Safe across threads and processes."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self._db = self.root / "urls.sqlite"
        self._local = threading.local()
        conn = self._conn()
        conn.execute("CREATE TABLE IF NOT EXISTS urls (url TEXT PRIMARY KEY, hash TEXT NOT NULL, size INTEGER)")
        if "size" not in {r[1] for r in conn.execute("PRAGMA table_info(urls)")}:
            conn.execute("ALTER TABLE urls ADD COLUMN size INTEGER")  # a cache made before sizes were kept
        conn.commit()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._db, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            # no fsync per stored URL (WAL stays consistent; a power cut may forget the newest
            # rows, whose images are then fetched again): 0.9 -> 0.4 ms per new image
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def _path(self, digest: str) -> Path:
        return self.blobs / digest[:2] / digest

    def get(self, url: str) -> Digested | None:
        """The bytes cached for `url`, carrying their sha256 (`training.cache.Digested`), or None.
        The file is named by the digest of what was written and replaced atomically, so a file of
        the recorded size is trusted without hashing it again; a row without a size (an older
        cache) is verified by hashing; a file of another size is a miss (downloaded again)."""
        row = self._conn().execute("SELECT hash, size FROM urls WHERE url=?", (url,)).fetchone()
        if row is None:
            return None
        digest, size = row
        try:
            data = self._path(digest).read_bytes()
        except OSError:
            return None
        if size is not None and len(data) != size:
            return None  # truncated or replaced: download again
        if size is None and hashlib.sha256(data).hexdigest() != digest:
            return None
        return Digested(data, digest)

    def digest(self, url: str) -> str | None:
        """The sha256 of the bytes cached for `url` (not read nor checked), or None."""
        row = self._conn().execute("SELECT hash FROM urls WHERE url=?", (url,)).fetchone()
        return row[0] if row else None

    def put(self, url: str, data: bytes) -> str:
        """Store `data` for `url`; returns its sha256 (taken from `data` when it is a Digested)."""
        digest = known_hash(data) or hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if not path.exists() or path.stat().st_size != len(data):
            write_atomic(path, data, fsync=False)  # content-addressed: a lost write is downloaded again
        conn = self._conn()
        with conn:
            conn.execute("INSERT OR REPLACE INTO urls (url, hash, size) VALUES (?, ?, ?)", (url, digest, len(data)))
        return digest

    def count(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM urls").fetchone()[0]


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

    def fetch(self, raw: str, *, hostname: str | None, auth: LSAuth | None, name: str = "image",
              project=None) -> bytes:
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

    def _read_shared(self, raw: str, url: str, hostname: str | None, name: str) -> bytes | None:
        """The upload's bytes straight from Label Studio's media dir, or None (then download)."""
        if self.media_dir is None or not self.is_ls_host(url, hostname):
            return None
        path = urlsplit(url).path
        if not path.startswith("/data/upload/") or urlsplit(url).query:
            return None
        local = (self.media_dir / "upload" / path[len("/data/upload/"):]).resolve()
        if self.media_dir / "upload" not in local.parents or not local.is_file():
            return None  # outside the media dir (../ tricks) or not there: let LS decide
        size = local.stat().st_size
        if size > self.max_bytes:
            raise FetchError(f"{name}: {raw}: {size} bytes is over the {self.max_bytes}-byte limit")
        return local.read_bytes()

    def _download(self, url: str, *, hostname: str | None, auth: LSAuth | None, name: str,
                  deadline: float) -> bytes:
        current = url
        refreshed = False
        redirects = 0
        while True:
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
                resp = self._session().get(
                    current, headers=headers, stream=True, allow_redirects=False,
                    timeout=(min(remaining, 5.0), remaining),
                )
            except requests.RequestException as exc:
                raise TransientFetchError(f"{name}: {current}: download failed ({exc})") from None
            with resp:
                if resp.status_code in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                    redirects += 1
                    if redirects > MAX_REDIRECTS:
                        raise FetchError(f"{name}: {url}: more than {MAX_REDIRECTS} redirects")
                    current = urljoin(current, resp.headers["Location"])
                    continue
                if resp.status_code == 401 and auth is not None and not refreshed and self.is_ls_host(current, hostname):
                    refreshed = True
                    try:
                        if auth.refresh():
                            continue
                    except TokenError as exc:
                        raise FetchError(f"{name}: {current}: {exc}") from None
                if resp.status_code >= 500 or resp.status_code == 429:
                    raise TransientFetchError(
                        f"{name}: {current}: HTTP {resp.status_code} {resp.reason or ''}".rstrip())
                if resp.status_code != 200:
                    raise FetchError(f"{name}: {current}: HTTP {resp.status_code} {resp.reason or ''}".rstrip())
                declared = resp.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise FetchError(
                        f"{name}: {current}: {declared} bytes is over the {self.max_bytes}-byte limit"
                    )
                chunks, total = [], 0
                try:
                    for chunk in resp.iter_content(chunk_size=65536):
                        total += len(chunk)
                        if total > self.max_bytes:
                            raise FetchError(
                                f"{name}: {current}: more than {self.max_bytes} bytes, download aborted"
                            )
                        if time.monotonic() > deadline:
                            raise FetchError(f"{name}: {current}: timed out after {self.timeout:g} s")
                        chunks.append(chunk)
                except requests.RequestException as exc:
                    raise FetchError(f"{name}: {current}: download failed ({exc})") from None
                with self._count_lock:
                    self.downloads += 1
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

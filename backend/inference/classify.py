"""`POST /projects/<id>/classify`: for an application, each image's label, its calibrated confidence
and the top k labels, from the project's production version (production.py) or the version asked for.

Images come as bytes (a raw body, a multipart upload) or as URLs, downloaded by the same
`ImageFetcher` as task images (allowed hosts, size and time limits, the blob cache). An image that
cannot be read (over the size limit, not downloadable, not an image) gets its own error entry; the
others get their answers.
"""

from __future__ import annotations

import numpy as np

from backend.errors import RequestError
from backend.fetch import FetchError, ImageFetcher
from backend.inference.production import Production

CHUNK = 32  # images per decode + forward pass
MAX_IMAGES = 256  # per request


class Classify:
    def __init__(self, production: Production, fetcher: ImageFetcher, projects, embeddings):
        self.production = production
        self.fetcher = fetcher
        self.projects = projects
        self.embeddings = embeddings

    def classify(
        self,
        pid: str,
        *,
        uploads: list[tuple[str, bytes]] | None = None,
        urls: list[str] | None = None,
        top_k: int = 3,
        version: str | None = None,
    ) -> dict:
        """{"project", "model_version", "production", "images": [one answer per image, in order]}."""
        count = len(urls if urls is not None else uploads or [])
        if count > MAX_IMAGES:
            raise RequestError(f"{count} images in one request; send at most {MAX_IMAGES}", status=400)
        vid, classifier = self.production.classifier(pid, version)
        if urls is not None:
            names, inputs = [f"image {i} ({url[:200]})" for i, url in enumerate(urls)], self._download(pid, urls)
        else:
            names = [name for name, _ in uploads or []]
            inputs = [self._checked(name, data) for name, data in uploads or []]
        images: list[dict] = [{}] * len(inputs)
        todo = [i for i, got in enumerate(inputs) if isinstance(got, bytes)]
        for i, got in enumerate(inputs):
            if not isinstance(got, bytes):
                images[i] = _failed(i, names[i], vid, str(got))
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start : start + CHUNK]
            errors: dict[int, str] = {}
            blobs = [inputs[i] for i in chunk]
            proba = classifier.predict_proba(
                blobs, cache=self.embeddings, names=[names[i] for i in chunk], errors=errors
            )
            for row, i in enumerate(chunk):
                if row in errors or not np.all(np.isfinite(proba[row])):
                    images[i] = _failed(i, names[i], vid, errors.get(row, f"{names[i]}: prediction failed"))
                else:
                    images[i] = _answer(i, names[i], vid, proba[row], classifier.labels, top_k)
        return {
            "project": pid,
            "model_version": vid,
            "production": vid == self.production.version(pid),
            "images": images,
        }

    def _checked(self, name: str, data: bytes) -> bytes | str:
        if not data:
            return f"{name}: empty file"
        if len(data) > self.fetcher.max_bytes:
            return f"{name}: {len(data)} bytes is over the {self.fetcher.max_bytes}-byte limit"
        return data

    def _download(self, pid: str, urls: list[str]) -> list[bytes | str]:
        """Each URL's bytes, or why not: the task images' download policy (hosts, limits, cache)."""
        state = self.projects.state(pid)
        hostname, token = self.projects.connection(state)
        auth = self.projects.auth(hostname, token) if hostname else None
        fetched = self.fetcher.fetch_many(
            [(f"image {i}", url) for i, url in enumerate(urls)], hostname=hostname, auth=auth, project=pid
        )
        return [str(got) if isinstance(got, FetchError) else got for got in fetched]


def _answer(index: int, name: str, vid: str, proba: np.ndarray, labels: list[str], top_k: int) -> dict:
    order = np.argsort(-proba, kind="stable")[: max(1, top_k)]
    ranked = [{"label": labels[j], "confidence": float(proba[j])} for j in order]
    return {
        "index": index,
        "name": name,
        "label": ranked[0]["label"],
        "confidence": ranked[0]["confidence"],
        "top_k": ranked,
        "model_version": vid,
        "error": None,
    }


def _failed(index: int, name: str, vid: str, error: str) -> dict:
    return {
        "index": index,
        "name": name,
        "label": None,
        "confidence": None,
        "top_k": [],
        "model_version": vid,
        "error": error,
    }

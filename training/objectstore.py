"""Where a model store's files live when several machines share them: an S3-compatible bucket.

`S3Objects(url)` with `url = s3://bucket/prefix`: small, whole-object calls over relative keys
("versions/v0001/manifest.json", "SERVING"). boto3 reads the endpoint and keys the usual way
(`AWS_ENDPOINT_URL` or `AWS_ENDPOINT_URL_S3` for MinIO/moto, `AWS_ACCESS_KEY_ID`, ...).

S3 has no rename, so training/storebucket.py makes a version visible by writing its manifest LAST
(`put(..., only_new=True)`: a conditional put that fails when another writer took the id first),
and moves SERVING (one object, replaced whole) only after that. A reader lists versions by their
manifests, so a version whose upload was cut off is never listed, loaded or served.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit


class ObjectExists(Exception):
    """A conditional put found the key already there."""


def is_remote(location: str | None) -> bool:
    return bool(location) and str(location).startswith("s3://")


class S3Objects:
    def __init__(self, url: str, client=None):
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"not an s3://bucket/prefix URL: {url!r}")
        self.url = url.rstrip("/")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.client = client

    def child(self, name: str) -> S3Objects:
        """The same bucket, one level deeper (a project's store under the shared prefix)."""
        return S3Objects(f"{self.url}/{name}", client=self.client)

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _missing(self, exc) -> bool:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")

    def get(self, rel: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(rel))["Body"].read()
        except self.client.exceptions.ClientError as exc:
            if self._missing(exc):
                return None
            raise

    def stamp(self, rel: str) -> tuple | None:
        """(ETag, last modified) of an object, or None: changes whenever the object is replaced."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(rel))
        except self.client.exceptions.ClientError as exc:
            if self._missing(exc):
                return None
            raise
        return (head.get("ETag"), str(head.get("LastModified")))

    def exists(self, rel: str) -> bool:
        return self.stamp(rel) is not None

    def put(self, rel: str, data: bytes, only_new: bool = False) -> None:
        extra = {"IfNoneMatch": "*"} if only_new else {}
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(rel), Body=data, **extra)
        except self.client.exceptions.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if only_new and code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise ObjectExists(rel) from None
            raise

    def upload(self, rel: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, self._key(rel))

    def download(self, rel: str, path: Path) -> None:
        self.client.download_file(self.bucket, self._key(rel), str(path))

    def list(self, rel_prefix: str) -> list[str]:
        """Relative keys under `rel_prefix`."""
        base = self._key(rel_prefix)
        cut = len(self.prefix) + 1 if self.prefix else 0
        out: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
            out.extend(item["Key"][cut:] for item in page.get("Contents", []))
        return out

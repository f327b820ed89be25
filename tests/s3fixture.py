"""A real S3-compatible server for tests: moto in server mode (HTTP on a free loopback port).

`moto_s3` (session fixture) -> `S3Server` with `.endpoint`, `.env` (the AWS_* variables a child
process needs), `.client()` and `.bucket(name)` (creates a fresh bucket). No real AWS account can
be used in CI; moto speaks the S3 REST protocol over real HTTP, so boto3, Label Studio's S3 storage
and presigned URLs are exercised as against MinIO.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest

from sync.netutil import free_port

KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class S3Server:
    endpoint: str

    @property
    def env(self) -> dict[str, str]:
        return {**KEYS, "AWS_ENDPOINT_URL": self.endpoint}

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"],
            region_name=KEYS["AWS_DEFAULT_REGION"],
        )

    def bucket(self, prefix: str = "tasveer") -> str:
        name = f"{prefix}-{secrets.token_hex(4)}"
        self.client().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def moto_s3():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.stop()

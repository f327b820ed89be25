"""The shapes of `POST /projects/<id>/classify`: the three ways to send images (read here, under the
body size limit) and the answer, as OpenAPI documents them (pydantic models with field descriptions)."""

from __future__ import annotations

from fastapi import Request
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from backend.api.httpio import DEFAULT_MAX_BODY, json_object, read_body
from backend.errors import RequestError
from backend.inference.classify import MAX_IMAGES

KINDS = 'an image (Content-Type image/*), a multipart/form-data upload of image files, or JSON {"urls": [...]}'


class LabelScore(BaseModel):
    label: str = Field(description="a label of the project's labeling config")
    confidence: float = Field(description="the model's calibrated probability of this label (0 to 1)")


class ImageAnswer(BaseModel):
    index: int = Field(description="the image's position in the request (0 = first file or URL)")
    name: str = Field(description="the uploaded file's name, or the URL")
    label: str | None = Field(description="the most likely label; null when the image could not be read")
    confidence: float | None = Field(
        description="its calibrated probability: of the answers given with confidence 0.9, about 90 % are right"
    )
    top_k: list[LabelScore] = Field(description="the `top_k` most likely labels, most likely first")
    model_version: str = Field(description="the model version that answered")
    error: str | None = Field(
        description="why this image got no answer (too large, not downloadable, not an image); null when it has one"
    )


class ClassifyAnswer(BaseModel):
    project: str = Field(description="the project id")
    model_version: str = Field(
        description="the model version that answered: the production version unless `?version=` named another"
    )
    production: bool = Field(description="whether that version is the project's production version")
    images: list[ImageAnswer] = Field(description="one answer per image, in the order sent")


def _binary(description: str) -> dict:
    return {"schema": {"type": "string", "format": "binary"}, "description": description}


REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "description": f"{KINDS}; at most {MAX_IMAGES} images",
        "content": {
            "image/*": _binary("one image (JPEG, PNG, WebP ...)"),
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}},
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["urls"],
                    "properties": {
                        "urls": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "image URLs: hosts in "
                            "TASVEER_ALLOWED_HOSTS (or the project's Label Studio), downloaded like task images",
                        }
                    },
                }
            },
        },
    }
}


async def read_images(request: Request) -> tuple[list[tuple[str, bytes]] | None, list[str] | None]:
    """(uploads, None) for a raw image or a multipart upload, (None, urls) for a JSON body;
    RequestError 413 past TASVEER_MAX_BODY_BYTES, 415 for another content type, 400 for a bad body."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        urls = (await json_object(request)).get("urls")
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u for u in urls):
            raise RequestError('body must be {"urls": ["<image URL>", ...]} with at least one URL', status=400)
        return None, urls
    if not (kind.startswith("image/") or kind in ("application/octet-stream", "multipart/form-data")):
        raise RequestError(f"send {KINDS} (got Content-Type {kind or 'none'})", status=415)
    raw = await read_body(request, getattr(request.app.state.settings, "max_body_bytes", DEFAULT_MAX_BODY))
    if kind != "multipart/form-data":
        if not raw:
            raise RequestError("request body is empty; send the image's bytes", status=400)
        return [(request.headers.get("x-filename") or "image", raw)], None
    return await _multipart(request, raw), None


async def _multipart(request: Request, raw: bytes) -> list[tuple[str, bytes]]:
    async def replay():
        yield raw

    try:
        form = await MultiPartParser(request.headers, replay(), max_files=MAX_IMAGES, max_fields=MAX_IMAGES).parse()
    except MultiPartException as exc:
        raise RequestError(f"multipart body cannot be read: {exc.message}", status=400) from None
    try:
        files = [
            (value.filename or key, await value.read())
            for key, value in form.multi_items()
            if isinstance(value, UploadFile)
        ]
    finally:
        await form.close()
    if not files:
        raise RequestError("the multipart body holds no file; send each image as a file field", status=400)
    return files

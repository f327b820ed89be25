"""POST /projects/{id}/duplicates/check[?upload=ID]: which of the uploaded files (multipart, at most
uploadcheck.MAX_FILES per request) duplicate a photo of the project or an earlier file of the same
upload id (backend/collection/uploadcheck.py); `tasveer import --skip-duplicates` sends them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from backend.api.classify_io import read_images
from backend.api.httpio import backend_of, project_param
from backend.errors import RequestError

router = APIRouter()

DOC = {
    "requestBody": {
        "required": True,
        "description": "a multipart/form-data upload of image files",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}},
                }
            }
        },
    }
}


@router.post("/projects/{project}/duplicates/check", openapi_extra=DOC, summary="find duplicates before an upload")
async def check_duplicates(project: str, request: Request):
    pid, backend = project_param(project), backend_of(request)
    uploads, urls = await read_images(request)
    if uploads is None:
        raise RequestError("send the files as multipart/form-data (URLs are not checked)", status=415)
    upload = request.query_params.get("upload") or None
    return await run_in_threadpool(backend.upload_checks.check, pid, upload, uploads)

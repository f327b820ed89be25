"""Similar photos and "label these like this one" (thin: parse the request, one call, the answer):

GET  /projects/{id}/tasks/{task}/similar?k=8   the task's k nearest neighbours in the project (cosine
                                               on the embeddings the backend already has), each with
                                               a person's label, the serving version's prediction and
                                               its confidence (backend/collection/similar.py)
GET  /projects/{id}/annotators                 whom annotations may be written as: the people of the
                                               Label Studio organization, and the default (the
                                               backend's token's user)
POST /projects/{id}/label-like                 {"task_ids": [...], "label": "...", "annotator":
                                               e-mail or id (optional)}: one submitted annotation per
                                               task in that person's name, at most 200 tasks
                                               (backend/collection/bulklabel.py)

Who the person is: the login proves only that the caller may use the backend, so the request names
the Label Studio user (`annotator`), and without one the annotations are the token's user's; Label
Studio shows them under that user's name like their own submits (bulklabel.py says why and how).
Answers: 422 for a label not in the labeling config, too many tasks or an unknown annotator; 404 for
tasks the project does not have (another project's); nothing is written then.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from backend.api.httpio import backend_of, json_object, project_param
from backend.collection import bulklabel, similar
from backend.errors import RequestError, quoted

router = APIRouter()

LABEL_LIKE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["task_ids", "label"],
                    "properties": {
                        "task_ids": {"type": "array", "items": {"type": "integer"}, "maxItems": bulklabel.MAX_TASKS},
                        "label": {"type": "string"},
                        "annotator": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                }
            }
        },
    }
}
K_QUERY = {
    "parameters": [
        {
            "name": "k",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": similar.MAX_K},
            "description": "how many neighbours (default 8)",
        }
    ]
}


def task_param(value: str) -> int:
    if not value.isdigit():
        raise RequestError(f"task id must be a number; got {quoted(value)}", status=400)
    return int(value)


@router.get("/projects/{project}/tasks/{task}/similar", openapi_extra=K_QUERY)
def similar_photos(project: str, task: str, request: Request):
    k = request.query_params.get("k", similar.DEFAULT_K)
    return similar.similar(backend_of(request), project_param(project), task_param(task), similar.check_k(k))


@router.get("/projects/{project}/annotators")
def annotators(project: str, request: Request):
    service, pid = backend_of(request), project_param(project)
    state = service.projects.state(pid)
    if state is None:
        raise RequestError(f"project {pid} is not set up (no /setup yet)", status=404)
    api = service.projects.api(state)
    return {"project": pid, "default": api.whoami().id, "people": api.members()}


@router.post("/projects/{project}/label-like", openapi_extra=LABEL_LIKE_BODY)
async def label_like(project: str, request: Request):
    pid = project_param(project)
    ids, label, who = bulklabel.parse_label_like(await json_object(request))
    return await run_in_threadpool(bulklabel.label_like, backend_of(request), pid, ids, label, who)

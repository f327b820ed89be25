"""The request bodies of the routes, as OpenAPI (the routes read JSON by hand, so FastAPI cannot see
them): what `app.openapi()` documents and what the schema fuzzing test (tests/test_fuzz.py) sends.
Loose on purpose: these describe what Label Studio sends; the routes themselves validate."""

from __future__ import annotations

PROJECT = {
    "anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "object"}],
    "description": 'a Label Studio project: "<id>.<created>", an id, or {"id": ...}',
}

BODIES = {
    "setup": {
        "type": "object",
        "required": ["project", "schema"],
        "properties": {
            "project": PROJECT,
            "schema": {"type": "string", "description": "the labeling config (XML)"},
            "hostname": {"type": "string"},
            "access_token": {"type": "string"},
            "extra_params": {"anyOf": [{"type": "object"}, {"type": "string"}, {"type": "null"}]},
        },
    },
    "predict": {
        "type": "object",
        "required": ["tasks"],
        "properties": {
            "tasks": {
                "type": "array",
                "items": {"type": "object", "properties": {"id": {"type": "integer"}, "data": {"type": "object"}}},
            },
            "project": PROJECT,
            "label_config": {"type": "string"},
            "params": {"type": "object"},
        },
    },
    "webhook": {
        "type": "object",
        "required": ["action"],
        "properties": {
            "action": {"type": "string"},
            "project": PROJECT,
            "annotation": {"type": "object"},
            "tasks": {"type": "array", "items": {"type": "object"}},
        },
    },
    "train": {"type": "object", "properties": {"project": PROJECT, "label_config": {"type": "string"}}},
    "job_status": {"type": "object", "properties": {"job": {"type": "string"}}},
    "rollback": {"type": "object", "required": ["version"], "properties": {"version": {"type": "string"}}},
    "params": {"type": "object", "description": "training parameters (training/params.py)"},
}


def body(name: str, required: bool = True) -> dict:
    """`openapi_extra` for a route whose JSON body is BODIES[name]."""
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": BODIES[name]}}}}


def query(name: str, description: str) -> dict:
    """`openapi_extra` for a route with one optional string query parameter."""
    return {
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": description}
        ]
    }

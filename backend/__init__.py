"""The Label Studio ML backend: one FastAPI app over one `Backend` (service.py), grouped by job.

- `api/`: HTTP only (the app and its routes, request guards, the OpenAPI schema, webhooks).
- `inference/`: serving versions and `/predict` (loaded models, predictor, confidence scores and queue priorities).
- `jobs/`: background training (the job runners: in-process, child process, RQ; the trainer,
  recipes, promotion, the annotation counter).
- `writeback/`: what goes back to Label Studio (predictions of new tasks, refreshes after a publish).
- `projects/`: what `/setup` said per project and its validated parameters.
- `accept/`: auto-accept decisions and their record.
- `ui/`: the model page.
- `workers/`: process entry points for trainings elsewhere (RQ work horse, child process); they
  import the service, nothing imports them.
- At the top: `service.py` (the composition root), `settings.py`, `errors.py`, `fetch.py`
  (image downloads with limits), `blobcache.py` (their disk cache), `__main__.py` (`python -m backend`).
"""

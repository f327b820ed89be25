"""`python -m backend`: serve the ML backend with uvicorn on TASVEER_HOST:TASVEER_PORT.

One worker by default. Model state lives on disk (serving pointer checked per request), so several
workers would each serve the newest published version; training jobs, however, coalesce per
process, so TASVEER_WORKERS > 1 is refused at start unless a shared queue runs the trainings
(REDIS_URL; config/variables.py RULES).
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from .api.guards import check_listen
from .settings import Settings, SettingsError


def main() -> int:
    try:
        settings = Settings.from_env()
        check_listen(settings)  # beyond loopback only with a login
    except SettingsError as exc:
        print(f"backend: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        "backend.api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Label Studio's own settings (those `label-studio start` loads), with one change on SQLite: every
transaction begins IMMEDIATE, taking SQLite's write lock up front.

Why: LS 1.23.2 serves `/next` inside a transaction that reads, then writes (the task's lock). A
deferred transaction that read while another connection wrote cannot take the write lock; SQLite
answers "database is locked" at once, without waiting, and LS's `DatabaseIsLockedRetryMiddleware`
(core/middleware.py) sleeps 1 s, 1.5 s, 2.25 s ... and runs the request again: the 1.1 / 2.6 / 4.9 s
`/next` stalls that bench/scale.py measured at every project size. An immediate transaction waits
for the other writer instead (SQLite's busy timeout), as long as its write takes. Django 5.1+
`OPTIONS["transaction_mode"]`. `tasveer up` points DJANGO_SETTINGS_MODULE here for SQLite only
(sync/lsdatabase.py ls_environment); PostgreSQL has no such lock.

LS's settings read Django's settings while they load (their Sentry set-up), so Django is pointed
at LS's module first; the change is made in place, in the dict both modules share.
"""

import os

os.environ["DJANGO_SETTINGS_MODULE"] = "label_studio.core.settings.label_studio"

from label_studio.core.settings.label_studio import *  # noqa: E402, F403
from label_studio.core.settings.label_studio import DATABASES  # noqa: E402

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["OPTIONS"] = {**DATABASES["default"].get("OPTIONS", {}), "transaction_mode": "IMMEDIATE"}

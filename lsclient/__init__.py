"""The one Label Studio client of tasveer, used by backend/ and sync/ alike (imports lsproto only).

* `client.py`: `LabelStudioClient`, the label-studio-sdk 2.1.2 client plus tasveer's operations,
  which it inherits from one mixin per job:
  * `people.py`: whoami, the organization's members, the auto-accept user, annotations;
  * `views.py`: tasveer's data-manager tabs, the tab of a selection of task ids;
  * `predictions.py`: import and delete predictions, their note items (patch, `cache_labels`);
  * `projects.py`: task count, model version, the ML backend's extra params, data-manager actions;
  * `examples.py`: `Example` and the training examples of a project;
  * `raw.py`: the raw HTTP calls, each where the SDK lacks the call or would be slower (task pages,
    the predictions list, model versions, the file upload, health).
* `sdkcall.py`: `sdk_call`, which turns an SDK call's HTTP error into a `LabelStudioError`.
* `transport.py`: the token's header and its renewal after a 401 (lsproto.tokens.LSAuth), retries
  with backoff.
* `tally.py`: `counting()`, the requests one piece of work sends, not another thread's.
* `errors.py`: `LabelStudioError`, what every failed call raises.

`open_client(auth)` builds a client; it imports the SDK (about a second) only then, so importing
this package stays cheap (the backend's error handler and the CLI's `--help` import it).
No other module of tasveer calls Label Studio's API (aside from the PAT exchange in lsproto/tokens.py,
which `LSAuth` does, and image downloads by backend/fetch.py, which fetch any URL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import LabelStudioError

if TYPE_CHECKING:
    from lsproto.tokens import LSAuth

    from .client import LabelStudioClient

__all__ = ["LabelStudioError", "open_client"]


def open_client(auth: LSAuth, *, timeout: float = 30.0) -> LabelStudioClient:
    """A client for `auth`'s Label Studio and token; `timeout` seconds per request."""
    from .client import LabelStudioClient

    return LabelStudioClient(auth, timeout=timeout)

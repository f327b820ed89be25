"""Label Studio's rules, written once and imported by both sides (`backend/` and `sync/`).

| module | rule |
| --- | --- |
| `config.py` | labeling config: which `<Choices>` fills which `<Image>`, labels (aliases), validation; building one |
| `results.py` | shapes of a choice result, a prediction, an annotation's label |
| `notes.py` | a prediction's score (the confidence), its note and queue key, the task data fields showing them |
| `tokens.py` | token kinds (legacy, personal access token, access JWT), the PAT exchange, auth headers |
| `urls.py` | kinds of task data URL (`/data/upload/`, `/data/local-files/`, http(s), cloud) |
| `project.py` | project references (`"12.1795492545"` = id + creation stamp) |

Nothing here talks to a network except `tokens.exchange_personal_access_token`, and nothing
imports `backend`, `sync` or `training`.
"""

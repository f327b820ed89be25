"""Per-project set-up: what `/setup` said (labeling config, connection, parameters), kept on disk
(setupstate.py) and read through `Projects` (registry.py); parameter changes validated with
per-field errors (paramcheck.py)."""

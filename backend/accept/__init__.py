"""Auto-accept: which tasks the serving version labels without a person and which stay spot
checks (policy.py), and the record of those decisions per project (decisions.py)."""

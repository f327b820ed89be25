"""Files Label Studio's own process loads (not imported by tasveer): a package only so that a wheel
or a non-editable install carries them (pyproject.toml packages.find)."""

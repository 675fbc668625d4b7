"""Data shipped with hoop's policy engine: the default policy (default.yaml)."""

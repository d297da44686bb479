"""Moved to ``include.redact`` (shared by the loader and DB Sentinel); imported from here as before."""

from include.redact import describe, redact

__all__ = ["describe", "redact"]

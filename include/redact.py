"""Secrets out of error messages before they reach logs, the control table, an alert, a sentinel summary
or its audit (shared by the loader and DB Sentinel)."""

from __future__ import annotations

import re

_PATTERNS = [
    (
        re.compile(r"(?i)\b(password|passwd|pwd|token|secret|sfPassword)(['\"]?\s*[=:]\s*)(['\"]?)[^\s;&'\",}]+"),
        r"\1\2\3***",
    ),
    (re.compile(r"(://[^:/@\s]+:)[^@/\s]+@"), r"\1***@"),  # user:password@ in URLs
]


def redact(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def describe(exc: BaseException, *secrets: str | None) -> str:
    """``Type: message`` of an exception, redacted."""
    return redact(f"{type(exc).__name__}: {exc}", *secrets)

"""What the drivers' errors mean, across drivers (shared by the loader and DB Sentinel)."""

from __future__ import annotations

# PEP 249's names: every driver's exception for a lost or refused connection (a restart, a network cut,
# the server shutting down) is, or derives from, one of these classes
_CONNECTION_ERRORS = ("OperationalError", "InterfaceError")


def lost_connection(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached or stopped answering."""
    return any(cls.__name__ in _CONNECTION_ERRORS for cls in type(exc).__mro__)


def said(exc: BaseException) -> str:
    """The error as one line (libpq's messages have a second line with a hint), secrets redacted."""
    from include.redact import describe

    return " ".join(describe(exc).split())

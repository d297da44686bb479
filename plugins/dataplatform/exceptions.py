"""Exceptions the failure callbacks tell apart."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowFailException


class RunRefused(AirflowFailException):
    """The run asked for what this row cannot do (a backfill of an integer cursor, say): the task fails with
    the reason and the fix for whoever started it, and on-call is not paged for an operator's own request."""

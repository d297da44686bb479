"""Retry analysis of a failed load: RETRY (transient) or REVIEW (needs a person), with a confidence.

The default analyzer is a deterministic rule set over the errors the five sources, Spark and Databricks
really raise, tried in order (the first match decides). An LLM analyzer behind an OpenAI-compatible
endpoint may be configured; any error, timeout or unusable answer from it falls back to the rules.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Literal, Protocol

log = logging.getLogger(__name__)

Action = Literal["RETRY", "REVIEW"]
MARKERS = ("[AI: Retry Recommended]", "[AI: Requires Review]")


@dataclass(frozen=True)
class Decision:
    action: Action
    confidence: float
    reason: str
    analyzer: str


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern
    action: Action
    confidence: float
    reason: str


def _rule(name: str, pattern: str, action: Action, confidence: float, reason: str) -> Rule:
    return Rule(name, re.compile(pattern, re.IGNORECASE), action, confidence, reason)


# Errors that name their cause exactly come first; broad phrases last. REVIEW rules for credentials and
# missing objects come before RETRY rules, since a connection error message may quote them.
RULES: tuple[Rule, ...] = (
    _rule(
        "bad_credentials",
        r"ORA-01017|ORA-28000|ORA-28001|Login failed for user|password authentication failed"
        r"|Incorrect username or password|Authentication failed|AUTHENTICATION_FAILED|code: 516|invalid_grant"
        r"|UNAUTHENTICATED|Invalid access token|401 Client Error",
        "REVIEW",
        0.95,
        "the credentials were refused: rotate or fix the secret, then clear the failure",
    ),
    _rule(
        "missing_object",
        r"ORA-00942|ORA-04043|Invalid object name|relation \S+ does not exist|does not exist or not "
        r"authorized|UNKNOWN_TABLE|code: 60\b|Table or view not found|TABLE_OR_VIEW_NOT_FOUND|SourceTableNotFound"
        r"|source table \S+ not found",
        "REVIEW",
        0.9,
        "the source or target object is missing or renamed: fix the control row or the source",
    ),
    _rule(
        "permission",
        r"ORA-01031|ORA-01749|permission denied|The SELECT permission was denied|Insufficient privileges"
        r"|ACCESS_DENIED|code: 497|PERMISSION_DENIED|not authorized to perform",
        "REVIEW",
        0.9,
        "the user lacks a grant: ask the source owner for it",
    ),
    _rule(
        "missing_column",
        r"ORA-00904|Invalid column name|column \S+ does not exist|invalid identifier"
        r"|UNRESOLVED_COLUMN|Missing columns:|code: 47\b",
        "REVIEW",
        0.85,
        "a configured column is gone at the source: update the control row",
    ),
    _rule(
        "schema_change",
        r"SchemaChangeError|schema mismatch|Schema mismatch|incompatible type|DELTA_FAILED_TO_MERGE_FIELDS"
        r"|ColumnNameCollision|cannot be cast|CAST_INVALID_INPUT|DELTA_SCHEMA_CHANGED",
        "REVIEW",
        0.85,
        "the data or schema changed in a way the load will not guess: decide the migration",
    ),
    _rule(
        "syntax",
        r"ORA-00933|ORA-00936|ORA-00907|Incorrect syntax near|syntax error at or near|SQL compilation error"
        r"|PARSE_SYNTAX_ERROR|Syntax error:|code: 62\b",
        "REVIEW",
        0.85,
        "the query is invalid: a bug or bad config",
    ),
    _rule(
        "bad_config",
        r"InvalidControlRow|UnsupportedSourceType|TooManyChunks|SecretNotFound|is not a valid cron"
        r"|MissingDriver|UnreadableColumn",
        "REVIEW",
        0.9,
        "the configuration is wrong: the message says which field to fix",
    ),
    _rule(
        "data_error",
        r"ORA-01722|ORA-01841|ORA-12899|Conversion failed when converting|Arithmetic overflow"
        r"|invalid input syntax for|numeric field overflow|value too long|Numeric value '.*' is not recognized"
        r"|DIVIDE_BY_ZERO|ORA-01476|NumberDoesNotFit|DECIMAL_PRECISION_EXCEEDS_MAX_PRECISION|exceeds max precision",
        "REVIEW",
        0.8,
        "a source value cannot be converted: look at the data",
    ),
    _rule(
        "statement_timeout",
        r"reached its statement or warehouse timeout|canceling statement due to statement timeout"
        r"|Query timeout expired|ORA-01013|TIMEOUT_EXCEEDED|code: 159\b",
        "REVIEW",
        0.65,
        "the query ran past the source's time limit and would again: a smaller chunk or an index is needed",
    ),
    _rule(
        "network_timeout",
        r"ORA-12170|ORA-12541|ORA-12543|ORA-12514|ORA-12528|ORA-12537|TNS:|Connect timeout"
        r"|connection timed out|timed out|TimeoutError|ReadTimeout|ConnectTimeout|Read timed out",
        "RETRY",
        0.85,
        "a network timeout: usually passes",
    ),
    _rule(
        "connection_lost",
        r"ORA-03113|ORA-03114|ORA-03135|ORA-01033|ORA-01034|ORA-01089|Connection reset|connection "
        r"refused|ConnectionResetError|ConnectionRefusedError|server closed the connection unexpectedly|Broken pipe"
        r"|communication link failure|TCP Provider|SSL SYSCALL error|EOF detected|could not connect to server"
        r"|the database system is (starting up|shutting down)|Connection is closed|NETWORK_ERROR|code: 210\b"
        r"|SourceUnreachable",  # the loader's own: the source refused the connection or dropped it
        "RETRY",
        0.85,
        "the connection dropped or the server restarted: usually passes",
    ),
    _rule(
        "deadlock_or_lock",
        r"ORA-00060|ORA-00054|ORA-30006|deadlock|was deadlocked|Lock request time out"
        r"|lock timeout|LockNotAvailable|could not obtain lock|ConcurrentAppendException|ConcurrentDeleteReadException"
        r"|ConcurrentModificationException|DELTA_CONCURRENT",
        "RETRY",
        0.8,
        "a lock conflict: retrying usually wins",
    ),
    _rule(
        "throttling",
        r"\b429\b|Too Many Requests|TEMPORARILY_UNAVAILABLE|REQUEST_LIMIT_EXCEEDED|rate limit|throttl"
        r"|ORA-00018|ORA-00020|too many connections|remaining connection slots are reserved"
        r"|TOO_MANY_SIMULTANEOUS_QUERIES"
        r"|code: 202\b|Warehouse .* is suspended|resource busy",
        "RETRY",
        0.75,
        "throttled or out of sessions: retry later",
    ),
    _rule(
        "cluster",
        r"CLUSTER_START_FAILURE|Cluster .* (terminated|unreachable)|DRIVER_UNREACHABLE|Could not reach driver"
        r"|INTERNAL_ERROR.*cluster|SPOT_INSTANCE_TERMINATION|CLOUD_PROVIDER_LAUNCH_FAILURE|INSTANCE_POOL_CLUSTER_FAILURE"
        r"|SparkContext was shut down|Executor lost|ExecutorLostFailure",
        "RETRY",
        0.75,
        "the cluster failed, not the load: retry on a fresh cluster",
    ),
    _rule(
        "service_unavailable",
        r"503 Service Unavailable|502 Bad Gateway|504 Gateway|ServiceUnavailable"
        r"|temporarily unavailable|Cancelled - stuck in queue",
        "RETRY",
        0.7,
        "a service was briefly unavailable",
    ),
    _rule(
        "out_of_space",
        r"ORA-01652|ORA-01653|ORA-01654|No space left on device|could not extend file|disk full"
        r"|ORA-04031|ORA-04030|OutOfMemoryError|Java heap space",
        "REVIEW",
        0.7,
        "out of space or memory: needs capacity or a smaller chunk size",
    ),
    _rule(
        "exceeded_timeout",
        r"Cancelled - exceeded timeout|AirflowTaskTimeout|execution_timeout",
        "REVIEW",
        0.6,
        "the load ran past its limit: it may need more time, chunks or a look at the source's plan",
    ),
)


class Analyzer(Protocol):
    def analyze(self, error: str) -> Decision: ...


def strip_markers(error: str) -> str:
    text = error or ""
    changed = True
    while changed:
        changed = False
        for marker in MARKERS:
            if text.startswith(marker):
                text, changed = text[len(marker) :].lstrip(), True
    return text


class RuleAnalyzer:
    def analyze(self, error: str) -> Decision:
        text = strip_markers(error)
        for rule in RULES:
            if rule.pattern.search(text):
                return Decision(rule.action, rule.confidence, f"{rule.name}: {rule.reason}", "rules")
        return Decision("REVIEW", 0.5, "unrecognised error: a person should look at it first", "rules")


SYSTEM_PROMPT = (
    "You triage failed data-ingestion loads. Given an error message, answer only with JSON: "
    '{"decision": "RETRY" or "REVIEW", "confidence": a number from 0 to 1, "reason": one sentence}. '
    "RETRY only for transient causes (network, timeouts, locks, throttling, restarts, cluster failures); "
    "REVIEW for credentials, missing objects or columns, permissions, syntax, data and schema problems."
)


class LlmAnalyzer:
    """An OpenAI-compatible chat completions endpoint; falls back to ``fallback`` on any problem.

    :param base_url: e.g. ``https://api.openai.com/v1`` or an Azure/OpenAI-compatible gateway.
    """

    def __init__(self, *, base_url: str, api_key: str | None, model: str, timeout: float = 20.0, fallback=None):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.model = model
        self.timeout = timeout
        self.fallback = fallback or RuleAnalyzer()

    def request(self, error: str) -> dict:
        return {
            "model": self.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": strip_markers(error)[:4000]},
            ],
        }

    def analyze(self, error: str) -> Decision:
        import httpx

        try:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            response = httpx.post(
                f"{self.base_url}/chat/completions", json=self.request(error), headers=headers, timeout=self.timeout
            )
            response.raise_for_status()
            answer = json.loads(response.json()["choices"][0]["message"]["content"])
            action = str(answer["decision"]).upper()
            if action not in ("RETRY", "REVIEW"):
                raise ValueError(f"decision {action!r}")
            confidence = min(max(float(answer["confidence"]), 0.0), 1.0)
            return Decision(action, confidence, str(answer["reason"])[:500], f"llm:{self.model}")
        except Exception as exc:  # the fallback is the point: whatever went wrong, the rules decide
            log.warning("LLM analysis failed (%s: %s); using the rules", type(exc).__name__, exc)
            return self.fallback.analyze(error)

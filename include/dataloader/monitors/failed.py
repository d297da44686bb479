"""Failed loads: the retry analysis decides RETRY (clear the status, count the retry, start the table's
DAG) or REVIEW (keep it Failed, mark it, page the row's alert target)."""

from __future__ import annotations

import logging

from include.control.repository import ControlRepository
from include.dataloader.monitors.analysis import MARKERS, Analyzer
from include.dataloader.monitors.ports import AirflowRuns, Pager

log = logging.getLogger(__name__)
RETRY_NOTE, REVIEW_NOTE = MARKERS


def analyze_failed(
    repo: ControlRepository, analyzer: Analyzer, airflow: AirflowRuns, pager: Pager, *, max_retries: int = 3
) -> list[dict]:
    results = []
    for row in repo.failed_for_analysis(max_retries=max_retries, review_marker=REVIEW_NOTE):
        key = row["control_key"]
        decision = analyzer.analyze(row["last_status_message"] or "")
        result = {
            "control_key": key,
            "decision": decision.action,
            "confidence": decision.confidence,
            "reason": decision.reason,
            "analyzer": decision.analyzer,
        }
        if decision.action == "RETRY":
            retried = repo.reset_for_retry(key, note=RETRY_NOTE, max_retries=max_retries)
            if retried is not None:
                result["run_id"] = airflow.trigger(key, {})
                result["retry_count"] = retried["retry_count"]
        elif repo.mark_for_review(key, REVIEW_NOTE) is not None:
            pager.page(
                row["alert_target"],
                f"{key}: failed load needs a review",
                f"{decision.reason} (confidence {decision.confidence:.0%}, {decision.analyzer}).\n"
                f"Error: {row['last_status_message']}",
                key,
            )
        log.info("%s: %s", key, result)
        results.append(result)
    return results

"""Re-verification (the seeds' ReVerifier): every differing key is read again from both live databases,
after an optional wait for replication to catch up. Keys whose state is no longer what the compare saw
are in flight and left out of the sync SQL."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from include.sentinel.compare import TableComparator, TableComparison
from include.sentinel.dialects.base import Key


@dataclass
class Verified:
    safe_to_insert: list[Key] = field(default_factory=list)
    valid_update_pks: list[Key] = field(default_factory=list)
    valid_delete_pks: list[Key] = field(default_factory=list)
    in_flight: list[Key] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        """Anything for the sync SQL to do."""
        return bool(self.safe_to_insert or self.valid_update_pks or self.valid_delete_pks)

    def counts(self) -> dict[str, int]:
        return {name: len(keys) for name, keys in vars(self).items()}


def reverify(comparator: TableComparator, comparison: TableComparison, *, wait_seconds: float = 0) -> Verified:
    """Read every differing key again from both sides, through the table's ``where`` filter as the compare
    did. A key that one side holds only outside the filter (its filter columns drifted) is an update there,
    not an insert that would collide nor a delete of a row the source still has."""
    if wait_seconds:
        time.sleep(wait_seconds)
    missing_in_target = comparison.keys("missing_in_target")
    missing_in_source = comparison.keys("missing_in_source")
    different = comparison.keys("different")
    keys = missing_in_target + missing_in_source + different
    columns = comparison.columns
    source = comparator.rows(comparator.source, keys, columns, canonical=True)
    target = comparator.rows(comparator.target, keys, columns, canonical=True)
    outside_target = outside_source = {}
    if comparator.spec.where:
        only_source = [k for k in missing_in_target if k in source and k not in target]
        only_target = [k for k in missing_in_source if k in target and k not in source]
        outside_target = comparator.rows(comparator.target, only_source, columns, canonical=True, filtered=False)
        outside_source = comparator.rows(comparator.source, only_target, columns, canonical=True, filtered=False)
    verified = Verified()
    for key in missing_in_target:
        if key in source and key not in target:
            (verified.valid_update_pks if key in outside_target else verified.safe_to_insert).append(key)
        else:
            verified.in_flight.append(key)
    for key in missing_in_source:
        if key in target and key not in source:
            (verified.valid_update_pks if key in outside_source else verified.valid_delete_pks).append(key)
        else:
            verified.in_flight.append(key)
    for key in different:
        still = key in source and key in target and source[key] != target[key]
        (verified.valid_update_pks if still else verified.in_flight).append(key)
    return verified

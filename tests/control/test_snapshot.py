import json
from datetime import UTC, datetime

import pytest

from include.control import snapshot


def test_write_then_read_round_trips_rows(tmp_path):
    path = tmp_path / "deep" / "snap.json"
    rows = [{"control_key": "a", "next_load_date_time": datetime(2024, 1, 15, 10, 30, tzinfo=UTC), "n": 1}]

    snapshot.write(path, rows)

    taken = snapshot.read(path)
    assert taken.rows == ({"control_key": "a", "next_load_date_time": "2024-01-15T10:30:00+00:00", "n": 1},)
    assert taken.generated_at is not None
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_a_missing_snapshot_reads_as_empty(tmp_path):
    assert snapshot.read(tmp_path / "none.json").rows == ()


def test_a_failed_write_keeps_the_previous_snapshot(tmp_path):
    path = tmp_path / "snap.json"
    snapshot.write(path, [{"control_key": "kept"}])

    with pytest.raises(TypeError):
        snapshot.write(path, [{"control_key": object()}])

    assert [r["control_key"] for r in snapshot.read(path).rows] == ["kept"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_corrupt_or_foreign_snapshot_names_the_file(tmp_path):
    path = tmp_path / "snap.json"
    path.write_text("{not json")
    with pytest.raises(snapshot.SnapshotError, match=r"snap\.json is unreadable"):
        snapshot.read(path)
    path.write_text(json.dumps({"format_version": 99, "rows": []}))
    with pytest.raises(snapshot.SnapshotError, match="has format 99, expected 1"):
        snapshot.read(path)

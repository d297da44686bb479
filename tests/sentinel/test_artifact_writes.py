"""The DAG's artifacts (plans, chunk results, SQL) on a local artifacts root: a write that dies half-way
leaves nothing a cleared re-run would trust (it skips a chunk whose result file exists)."""

import json

import pytest
from airflow.sdk import ObjectStoragePath

from include.sentinel.steps import Layout, _write

BROKEN = '{"index": 3, "memo": "\ud800"}'  # a lone surrogate: the write fails after the file was opened


def test_a_chunk_result_that_fails_half_written_leaves_no_file_and_the_earlier_result_whole(tmp_path):
    layout = Layout(ObjectStoragePath(f"file://{tmp_path}/run"), "manual__2024-01-01T00:00:00+00:00")
    path = layout.chunk("public.accounts", 3)

    with pytest.raises(UnicodeEncodeError):
        _write(path, BROKEN)
    assert not path.exists()

    _write(path, json.dumps({"index": 3}))
    with pytest.raises(UnicodeEncodeError):
        _write(path, BROKEN)
    assert json.loads(path.read_text()) == {"index": 3}
    assert [p.name for p in (tmp_path / "run" / "chunks" / "PUBLIC_ACCOUNTS").glob("chunk_*.json")] == [
        "chunk_00003.json"
    ]

"""Load verification of a table whose columns the loader renamed (``Order Id`` -> ``Order_Id``): both the
in-process and the in-engine path compare the source's columns with their Delta names, key and cursor
included, and name the differing keys as the source has them."""

from __future__ import annotations

from pathlib import Path

import deltalake

from include.dataloader.dialects import ConnectionParams
from include.dataloader.verification import local_bronze, verify
from tests.dataloader.conftest import FIXED_NOW, control_row


def test_renamed_key_and_columns_verify_equal_then_a_drift_in_bronze_is_found_in_both_paths(
    loads, source_sql, source_url, tmp_path
):
    source_sql(
        'CREATE TABLE order_lines ("Order Id" int PRIMARY KEY, "Order Date" date, "2nd Amount" numeric(12,2), '
        '"Updated At" timestamp, status text)'
    )
    source_sql(
        "INSERT INTO order_lines SELECT g, date '2024-01-01' + g, g * 1.5, "
        "timestamp '2024-01-01' + g * interval '1 hour', 's' || g FROM generate_series(1, 60) g"
    )
    row = control_row(
        "order_lines",
        "incremental",
        incremental_column="Updated At",
        incremental_type="timestamp",
        primary_key_columns=["Order Id"],
        verify=True,
    )
    watermark = loads.run(row).watermark
    bronze = local_bronze(row, loads.warehouse.root)
    assert {"Order_Id", "Order_Date", "_2nd_Amount", "Updated_At"} <= set(loads.schema(row))

    def verified(out: str) -> list[dict]:
        results = []
        for in_process in (True, False):
            result = verify(
                row,
                "postgresql",
                ConnectionParams(url=source_url),
                bronze,
                run_id="r1",
                watermark=watermark,
                out_dir=tmp_path / out / str(in_process),
                now=FIXED_NOW,
                in_process=in_process,
            ).as_dict()
            result.pop("report")
            results.append(result)
        return results

    for result in verified("equal"):
        assert (result["status"], result["failures"], result["sync_sql"]) == ("equal", 0, None)
        assert result["source_rows"] == result["target_rows"] == result["matching"] == 60

    table = deltalake.DeltaTable(bronze.table)
    table.update(updates={"_2nd_Amount": "0"}, predicate='"Order_Id" IN (7, 41)')
    table.delete('"Order_Id" = 12')
    in_process, in_engine = verified("drifted")
    note = Path(in_engine.pop("sync_sql")).read_text()  # the keys for the reload, as bronze names them
    assert "-- different (Order_Id): 7\n-- different (Order_Id): 41\n" in note
    assert "-- missing in the target (Order_Id): 12\n" in note
    assert Path(in_process.pop("sync_sql")).read_text().splitlines()[2:] == note.splitlines()[2:]
    assert in_process == in_engine
    assert in_process["status"] == "mismatch"
    assert in_process["keys"]["different"] == [[7], [41]]
    assert in_process["keys"]["missing_in_target"] == [[12]]
    assert (in_process["failures"], in_process["matching"]) == (3, 57)

"""The Arrow a driver returns, made plain for Spark (``_plain_arrow``)."""

import uuid

import pyarrow as pa

from include.dataloader.readers import _plain_arrow


def test_a_uuid_becomes_its_canonical_text_whatever_its_bytes():
    values = [uuid.UUID("41424344-4546-4748-494a-4b4c4d4e4f50").bytes, None, b"\xff" * 16]  # ASCII, NULL, not UTF-8
    table = pa.table({"id": pa.ExtensionArray.from_storage(pa.uuid(), pa.array(values, pa.binary(16)))})

    plain = _plain_arrow(table)

    assert plain.schema.field("id").type == pa.string()
    assert plain.column("id").to_pylist() == [
        "41424344-4546-4748-494a-4b4c4d4e4f50",
        None,
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
    ]

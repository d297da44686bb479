"""Keys, plans and chunk results as JSON that decodes to the same Python values (dates, timestamps and
decimals tagged): the artifacts of a run and the checkpoints of a session."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from include.sentinel.compare import Chunk, ChunkResult, Schema

KINDS = ("missing_in_target", "missing_in_source", "different")


def encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, bytes | memoryview):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    return value


def decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "$datetime" in value:
            return datetime.fromisoformat(value["$datetime"])
        if "$date" in value:
            return date.fromisoformat(value["$date"])
        if "$decimal" in value:
            return Decimal(value["$decimal"])
        if "$bytes" in value:
            return bytes.fromhex(value["$bytes"])
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def key(value: Any) -> tuple | None:
    return None if value is None else tuple(decode(value))


def encode_plan(table: str, schema: Schema, chunks: list[Chunk]) -> dict[str, Any]:
    return {
        "table": table,
        "columns": schema.columns,
        "key_columns": schema.key_columns,
        "collations": schema.collations,
        "by_hash": schema.by_hash,
        "target_columns": schema.target_columns,
        "target_key_columns": schema.target_key_columns,
        "target_names": schema.target_names,
        "chunks": [[encode(c.lower), encode(c.upper), [encode(k) for k in c.segments], c.buckets] for c in chunks],
    }


def decode_plan(document: dict[str, Any]) -> tuple[Schema, list[Chunk]]:
    schema = Schema(
        [tuple(c) for c in document["columns"]],
        [tuple(c) for c in document["key_columns"]],
        document.get("collations", {}),
        document.get("by_hash", False),
        *(
            [tuple(c) for c in document[name]] if document.get(name) is not None else None
            for name in ("target_columns", "target_key_columns")
        ),
        document.get("target_names", {}),
    )
    chunks = [
        Chunk(i, key(lo), key(hi), tuple(key(k) for k in segments), buckets)
        for i, (lo, hi, segments, buckets) in enumerate(document["chunks"])
    ]
    return schema, chunks


def encode_result(result: ChunkResult) -> dict[str, Any]:
    data = asdict(result)
    for name in KINDS:
        data[name] = [encode(k) for k in data[name]]
    return data


def decode_result(data: dict[str, Any]) -> ChunkResult:
    for name in KINDS:
        data[name] = [tuple(decode(k)) for k in data[name]]
    return ChunkResult(**data)

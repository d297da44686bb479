"""The verification's in-process path: no row hashed inside either engine.

- the source is read through the loader's own Arrow reader of its engine (``SourceDialect.arrow_batches``,
  ADBC for PostgreSQL; the load's connection parameters), the columns projected as every load reads them,
  under the scope's predicate in the source's dialect; with ``source_streams`` above 1 and a single integer
  key, in that many key ranges at once (``key_ranges``), each its own connection and reader thread;
- the bronze table, a local Delta folder, through delta-rs (``deltalake``): its pyarrow dataset scanned in
  batches, only the compared columns, the scope pushed down as a dataset filter (files and row groups
  outside it are skipped);
- both streamed at once and compared by ``buckets.compare_streams`` over the README's canonical text.

It applies when the source's engine is one whose Arrow canonical text the tests hold (``IN_PROCESS_SOURCES``)
and the bronze table is a local Delta folder. Elsewhere (Databricks SQL, other sources) the comparison
stays inside both engines (``TableComparator.compare``). Either way the differences are then re-verified
and reported by DB Sentinel's ``compare_tables``, alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.dataset as ds
from sqlglot import exp

from include.dataloader.dialects import ColumnInfo, ConnectionParams, SourceDialect
from include.dataloader.queries import Cursor, SourceQueries
from include.dataloader.readers import BATCH_ROWS
from include.dataloader.verification.buckets import ArrowSide, Streams, compare_streams

if TYPE_CHECKING:
    from include.control.model import ControlRow
    from include.dataloader.verification import Bronze, Scope
    from include.sentinel.compare import TableComparator, TableComparison

log = logging.getLogger(__name__)

IN_PROCESS_SOURCES = frozenset({"postgresql"})  # engines whose Arrow types tests/dataloader hold canonical
# the source read in this many key ranges at once (a single integer key), one connection each: one by
# default, since on two busy cores the reading is CPU-bound (PostgreSQL's backend, the driver's decoding,
# delta-rs) and two ranges measured slower, not faster (bench/RESULTS.md, "Load verification")
SOURCE_STREAMS = 1


def applies(db_type: str, bronze: Bronze) -> bool:
    """Whether the in-process path runs: a source engine of ``IN_PROCESS_SOURCES``, a local Delta folder."""
    return db_type in IN_PROCESS_SOURCES and bronze.sql_dialect == "spark" and bronze.schema == "delta"


def source_scan(
    row: ControlRow,
    dialect: SourceDialect,
    params: ConnectionParams,
    columns: list[ColumnInfo],
    names: list[str],
    condition: Any,
    *,
    as_text: frozenset[str] = frozenset(),
    batch_rows: int = BATCH_ROWS,
    ranges: list[exp.Expression] | None = None,
) -> Callable[[], Iterator[pa.RecordBatch] | Streams]:
    """A new read of ``names`` per call, projected as the loader projects them (its text-typed columns as
    text), and ``as_text`` as the source's own text too (decimals: the server writes their digits for less
    than the driver's conversion of its binary form costs). ``ranges`` (``key_ranges``): one read per
    range, all at once, each on its own connection, the same driver and parameters."""
    info = {c.name: c for c in columns}
    queries = SourceQueries(
        dialect,
        row.source_schema,
        row.source_table_name,
        names,
        frozenset(n for n in names if dialect.reads_as_text(info[n]) or n in as_text),
    )
    if not ranges or len(ranges) < 2:
        query = queries.where(condition)
        return lambda: dialect.arrow_batches(params, query, batch_rows=batch_rows)
    parts = [queries.where(part if condition is None else exp.and_(exp.paren(condition), part)) for part in ranges]
    return lambda: Streams([dialect.arrow_batches(params, q, batch_rows=batch_rows) for q in parts])


def key_ranges(
    row: ControlRow, dialect: SourceDialect, params: ConnectionParams, key: str, streams: int
) -> list[exp.Expression] | None:
    """``streams`` predicates that split the rows on the integer ``key`` between its lowest and highest
    value (an indexed key: two index look-ups), together covering every row: the first range has no
    lower bound and takes a NULL key too, the last no upper bound (a row inserted meanwhile outside the
    bounds is still read). None when there is nothing to split (one stream, an empty table, too few keys)."""
    if streams < 2:
        return None
    column = exp.column(key, quoted=True)
    bounds = exp.select(exp.Min(this=column), exp.Max(this=column)).from_(
        exp.table_(row.source_table_name, db=row.source_schema, quoted=True)
    )
    found = pa.Table.from_batches(list(dialect.arrow_batches(params, bounds.sql(dialect=dialect.sqlglot))))
    if found.num_rows == 0 or found.column(0)[0].as_py() is None:
        return None
    low, high = (int(found.column(i)[0].as_py()) for i in (0, 1))
    span = high - low + 1
    if span < streams:
        return None
    cuts = [exp.Literal.number(low + span * i // streams) for i in range(1, streams)]
    ranges = [exp.or_(exp.paren(column < cuts[0]), column.is_(exp.null()))]
    ranges += [exp.and_(column >= cuts[i - 1], column < cuts[i]) for i in range(1, len(cuts))]
    return [*ranges, column >= cuts[-1]]


def bronze_scan(
    path: str, names: list[str], scope: Scope, *, batch_rows: int = BATCH_ROWS
) -> Callable[[], Iterator[pa.RecordBatch]]:
    """A new scan of the Delta folder's current version per call, in batches of at most ``batch_rows``."""
    from deltalake import DeltaTable

    def scan() -> Iterator[pa.RecordBatch]:
        dataset = DeltaTable(path).to_pyarrow_dataset()
        where = arrow_predicate(scope, dataset.schema)
        yield from dataset.to_batches(columns=names, filter=where, batch_size=batch_rows)

    return scan


def arrow_predicate(scope: Scope, schema: pa.Schema) -> ds.Expression | None:
    """The scope as a dataset filter on the Delta table, with the same values as its Spark SQL predicate
    (``spark_literal``: a timestamp with zone read in UTC unless its text has an offset)."""
    from include.dataloader.naming import delta_column_name

    cursor = scope.cursor
    if cursor is None or (scope.upper is None and scope.lower is None):
        return None
    name = delta_column_name(cursor.column)
    column = ds.field(name)
    value = arrow_value(cursor, scope.upper if scope.upper is not None else scope.lower, schema.field(name).type)
    condition = column <= value if scope.upper is not None else column >= value
    if scope.null_cursors == "included":
        condition = condition | column.is_null()
    return condition


def arrow_value(cursor: Cursor, value: Any, arrow_type: pa.DataType) -> pa.Scalar:
    """A watermark (text, as the control row keeps it) as a scalar of the Delta column's Arrow type."""
    if cursor.kind == "integer":
        return pa.scalar(int(value), arrow_type)
    if cursor.kind == "date":
        day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
        if not pa.types.is_timestamp(arrow_type):
            return pa.scalar(day, arrow_type)
        value = datetime.combine(day, datetime.min.time())  # Spark promotes a date to its midnight
    stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if pa.types.is_timestamp(arrow_type) and arrow_type.tz is not None:
        stamp = stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
    elif stamp.tzinfo is not None:
        stamp = stamp.replace(tzinfo=None)  # CAST(... AS TIMESTAMP_NTZ) keeps the wall time
    return pa.scalar(stamp, arrow_type)


def in_process_compare(
    row: ControlRow,
    dialect: SourceDialect,
    params: ConnectionParams,
    columns: list[ColumnInfo],
    scope: Scope,
    condition: Any,
    bronze: Bronze,
    *,
    source_streams: int = SOURCE_STREAMS,
) -> Callable[[TableComparator], TableComparison]:
    """``compare_tables``' ``compare``: the comparator's own catalog check (``inspect``: columns on both
    sides, their types), then the two sides streamed and hashed here, the source in ``source_streams``
    key ranges at once when its key is one integer column."""
    from include.sentinel.compare import ChunkResult, TableComparison

    def compare(comparator: TableComparator) -> TableComparison:
        started = time.monotonic()
        try:
            schema = comparator.inspect()
        finally:
            comparator.close()
        source_types = schema.key_columns + schema.columns
        names = [n for n, _ in source_types]
        # the Delta table's own names and types of the same columns, in the same order (keys first)
        target_types = schema.side_keys("target") + schema.side_columns("target", schema.columns)
        source_kinds = [(n, comparator.dialect.kind(t)) for n, t in source_types]
        decimals = frozenset(n for n, kind in source_kinds if kind == "decimal")
        ranges = None
        if len(schema.key_columns) == 1 and source_kinds[0][1] == "integer":
            ranges = key_ranges(row, dialect, params, source_kinds[0][0], source_streams)
        source_side = ArrowSide(
            source_scan(row, dialect, params, columns, names, condition, as_text=decimals, ranges=ranges),
            source_kinds,
            len(schema.key_columns),
        )
        target_side = ArrowSide(
            bronze_scan(bronze.table, [n for n, _ in target_types], scope),
            [(n, comparator.target_dialect.kind(t)) for n, t in target_types],
            len(schema.key_columns),
        )
        diff = compare_streams(
            source_side,
            target_side,
            timestamp_precision=comparator.dialect.timestamp_precision,
            float_digits=comparator.dialect.float_digits,
        )
        log.info(
            "%s: compared in process: %d source rows (%d key ranges at once), %d bronze rows, %d buckets "
            "differing, %d passes",
            row.control_key,
            diff.source_rows,
            len(ranges or [None]),
            diff.target_rows,
            diff.buckets_differing,
            diff.passes,
        )
        chunk = ChunkResult(
            0,
            diff.source_rows,
            diff.target_rows,
            diff.equal,
            diff.missing_in_target,
            diff.missing_in_source,
            diff.different,
            round(time.monotonic() - started, 3),
        )
        return TableComparison(comparator.spec, schema.columns, [chunk], chunk.seconds, schema)

    return compare

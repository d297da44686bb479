"""The extraction queries of every load strategy, built once with sqlglot for all five dialects.

Watermark filters are inclusive (``cursor >= watermark``) at the cursor's full precision: rows that share
the watermark's value but committed after the last load are read again and deduplicated by the merge.
(The original design's ``> watermark + 1 second`` and ``CAST(cursor AS DATE) >`` skipped such rows.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from include.dataloader.dialects import SourceDialect


@dataclass(frozen=True)
class Cursor:
    """The cursor column and how to compare it: its type and whether its values carry a time zone."""

    column: str
    kind: str  # timestamp | date | integer
    with_time_zone: bool = False

    @classmethod
    def of_type(cls, column: str, spark_type: str, kind: str | None = None) -> Cursor:
        """The cursor on ``column`` of Spark type ``spark_type``; ``kind`` when the row declares one."""
        if kind is None:
            integral = spark_type in ("int", "bigint", "smallint", "tinyint")
            kind = "integer" if integral else ("date" if spark_type == "date" else "timestamp")
        return cls(column, kind, with_time_zone=spark_type == "timestamp")


class SourceQueries:
    """Queries against one source table, rendered in its dialect with every identifier quoted."""

    def __init__(
        self,
        dialect: SourceDialect,
        schema: str | None,
        table: str,
        columns: list[str] | None = None,
        text_columns: frozenset[str] = frozenset(),
        exact_text_columns: frozenset[str] = frozenset(),
    ):
        """:param text_columns: columns read as their text form (their type is TEXT in the dialect's map).
        :param exact_text_columns: columns the native driver would round, read as the dialect's
            ``exact_text`` (the local engine only)."""
        self.dialect = dialect
        self.table = exp.table_(table, db=schema, quoted=True)
        self.columns = columns
        self.text_columns = text_columns
        self.exact_text_columns = exact_text_columns

    def _col(self, name: str) -> exp.Column:
        return exp.column(name, quoted=True)

    def _lit(self, cursor: Cursor, value: Any) -> exp.Expression:
        return self.dialect.literal(value, cursor.kind, with_time_zone=cursor.with_time_zone)

    def _render(self, query: exp.Query) -> str:
        return query.sql(dialect=self.dialect.sqlglot)

    def _project(self, name: str) -> exp.Expression:
        if name in self.text_columns:
            return exp.alias_(self.dialect.as_text(self._col(name)), name, quoted=True)
        if name in self.exact_text_columns:
            return exp.alias_(self.dialect.exact_text(self._col(name)), name, quoted=True)
        return self._col(name)

    def _select(self, where: exp.Expression | None = None) -> str:
        projection = [self._project(c) for c in self.columns] if self.columns else [exp.Star()]
        query = exp.select(*projection).from_(self.table)
        return self._render(query.where(where) if where is not None else query)

    def full(self) -> str:
        return self._select()

    def where(self, condition: exp.Expression | None) -> str:
        """The table's columns, as every load reads them, under ``condition`` (None: every row)."""
        return self._select(condition)

    def schema_probe(self) -> str:
        """No rows, all columns: the shape of the result without reading the table."""
        # not WHERE FALSE: Oracle (before 23) and SQL Server have no boolean literals
        return self._select(exp.EQ(this=exp.Literal.number(1), expression=exp.Literal.number(0)))

    def since(self, cursor: Cursor, watermark: Any | None) -> str:
        """Rows at or past the watermark; every row when there is none yet."""
        if watermark is None:
            return self._select()
        return self._select(self._col(cursor.column) >= self._lit(cursor, watermark))

    def window(self, cursor: Cursor, start: Any) -> str:
        """Rows of a rolling window: the rolling column at or after ``start``."""
        return self._select(self._col(cursor.column) >= self._lit(cursor, start))

    def chunk(self, cursor: Cursor, lower: Any | None, upper: Any | None) -> str:
        """Rows of one chunk, ``lower <= cursor < upper``; an open bound is None.

        The first chunk (no lower bound) also takes the rows whose cursor is NULL, so that the chunks
        together cover the whole table.
        """
        return self._select(self.chunk_condition(cursor, lower, upper, lambda c: self._col(c), self._lit))

    @staticmethod
    def chunk_condition(cursor: Cursor, lower, upper, column, literal) -> exp.Expression | None:
        col = column(cursor.column)
        conditions = []
        if lower is not None:
            conditions.append(col >= literal(cursor, lower))
        if upper is not None:
            conditions.append(col < literal(cursor, upper))
        if lower is None:
            conditions = [exp.or_(exp.paren(exp.and_(*conditions)), col.is_(exp.null()))] if conditions else []
        return exp.and_(*conditions) if conditions else None

    def change_count(self, cursor: Cursor, watermark: Any | None, *, at_watermark: bool = False) -> str:
        """How many rows changed strictly after the watermark (``changes``: the change sensor's test).

        ``at_watermark`` adds how many rows sit exactly at it (``at_watermark``), in the same scan:
        check_and_load compares that with the target's, to find rows committed later at the watermark.
        """
        col = self._col(cursor.column)
        changes = exp.Count(this=exp.Star())
        query = exp.select(changes.as_("changes")).from_(self.table)
        if watermark is None:
            return self._render(query)
        literal = self._lit(cursor, watermark)
        if not at_watermark:
            return self._render(query.where(col > literal))
        changes = exp.Count(this=exp.Case().when(col > literal.copy(), exp.Literal.number(1)))
        exact = exp.Count(this=exp.Case().when(col.copy().eq(literal.copy()), exp.Literal.number(1)))
        return self._render(
            exp.select(changes.as_("changes"), exact.as_("at_watermark")).from_(self.table).where(col >= literal)
        )

    def bounds(self, cursor: Cursor) -> str:
        """The cursor's MIN and MAX (chunk planning)."""
        col = self._col(cursor.column)
        return self._render(
            exp.select(exp.Min(this=col).as_("lower_bound"), exp.Max(this=col).as_("upper_bound")).from_(self.table)
        )

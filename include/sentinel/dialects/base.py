"""What every sentinel dialect builds the same way from its own pieces (quoting, canonical text, key
ranges, bind style): range filters, per-row hashes, and rows fetched by key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Key = tuple[Any, ...]


class SentinelDialect:
    name: str

    @staticmethod
    def ident(name: str) -> str:
        raise NotImplementedError

    def key_range(self, pk: Sequence[str], lower: Key | None, upper: Key | None) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def row_hash(self, columns: Sequence[tuple[str, str]]) -> str:
        raise NotImplementedError

    def canonical(self, column: str, data_type: str) -> str:
        raise NotImplementedError

    def rows_by_key_query(self, table: str, select: str, pk: Sequence[str], keys: Sequence[Key]):
        raise NotImplementedError

    def _range(self, pk, lower, upper, where) -> tuple[str, dict[str, Any]]:
        condition, params = self.key_range(pk, lower, upper)
        return (f"({condition}) AND ({where})" if where else condition), params

    def row_hashes_sql(self, table: str, columns, pk, lower, upper, where) -> tuple[str, Any]:
        condition, params = self._range(pk, lower, upper, where)
        keys = ", ".join(self.ident(k) for k in pk)
        return f"SELECT {keys}, {self.row_hash(columns)} FROM {table} WHERE {condition}", params

    def canonical_rows_query(self, table: str, columns, pk, keys: Sequence[Key]):
        select = ", ".join([*(self.ident(k) for k in pk), *(self.canonical(c, t) for c, t in columns)])
        return self.rows_by_key_query(table, select, pk, keys)

    def raw_rows_query(self, table: str, columns, pk, keys: Sequence[Key]):
        select = ", ".join([*(self.ident(k) for k in pk), *(self.ident(c) for c, _ in columns)])
        return self.rows_by_key_query(table, select, pk, keys)

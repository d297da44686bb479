"""The two tests every dialect's query table gets: the exact SQL and binds, and sqlglot parsing it."""

import re

import pytest
import sqlglot
from sqlglot.errors import ErrorLevel


def as_named(sql: str, marker: str = ":") -> str:
    """pyformat binds (``%(name)s``) as named binds that sqlglot parses, ``%%`` as the % it stands for."""
    return re.sub(r"%\((\w+)\)s", marker + r"\1", sql).replace("%%", "%")


def exact_sql_tests(queries: dict, read: str, marker: str = ":"):
    """``queries``: name -> ((sql, params) built, expected sql, expected params)."""

    @pytest.mark.parametrize("name", sorted(queries))
    def test_exact_query(name):
        (sql, params), expected_sql, expected_params = queries[name]
        assert sql == expected_sql
        assert params == expected_params

    @pytest.mark.parametrize("name", sorted(queries))
    def test_query_parses(name):
        (sql, _), _, _ = queries[name]
        sqlglot.parse_one(as_named(sql, marker), read=read, error_level=ErrorLevel.RAISE)

    return test_exact_query, test_query_parses

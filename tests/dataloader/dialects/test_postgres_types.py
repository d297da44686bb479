"""Every PostgreSQL type a column can have, loaded through ``dataloader run``: the Delta value is the
source's value (its text form, or that value in a Delta type).

The types come from ``pg_type``, not from a list here: a type the server has and the dialect's TYPES map
lacks fails this test.
"""

from datetime import date, datetime
from decimal import Decimal

import psycopg
import pytest

from include.dataloader.dialects import dialect_for
from include.dataloader.dialects.base import ColumnInfo

# one value of each type, in its input form; keyed by pg_type.typname
SAMPLES = {
    "bool": "t",
    "char": "c",
    "bpchar": "x",
    "name": "pg",
    "text": "Zoé",
    "varchar": "Straße",
    "int2": "7",
    "int4": "70000",
    "int8": "9000000000",
    "oid": "4000000000",
    "float4": "1.5",
    "float8": "2.25",
    "numeric": "12.34",
    "money": "12.34",
    "date": "2024-01-15",
    "time": "10:30:00.5",
    "timetz": "10:30:00.5+02",
    "timestamp": "2024-01-15 10:30:00.5",
    "timestamptz": "2024-01-15 10:30:00.5+02",
    "interval": "1 day 02:03:04.5",
    "bytea": "\\xdeadbeef",
    "bit": "1",
    "varbit": "101",
    "uuid": "41424344-4546-4748-494a-4b4c4d4e4f50",
    "json": '{"a": [1, 2]}',
    "jsonb": '{"a": [1, 2]}',
    "jsonpath": "$.a[*]",
    "xml": "<a>1</a>",
    "inet": "192.168.0.1/24",
    "cidr": "10.0.0.0/8",
    "macaddr": "08:00:2b:01:02:03",
    "macaddr8": "08:00:2b:01:02:03:04:05",
    "point": "(1,2)",
    "line": "{1,-1,0}",
    "lseg": "[(1,2),(3,4)]",
    "box": "(3,4),(1,2)",
    "path": "[(1,2),(3,4)]",
    "polygon": "((0,0),(1,1),(1,0))",
    "circle": "<(1,2),3>",
    "tsvector": "a fat cat",
    "tsquery": "fat & rat",
    "pg_lsn": "16/B374D848",
    "pg_snapshot": "10:20:10,14,15",
    "txid_snapshot": "10:20:10,14,15",
    "xid": "5",
    "xid8": "5",
    "cid": "5",
    "tid": "(1,2)",
    "aclitem": "pg_monitor=r/pg_monitor",
    "refcursor": "c1",
    "regclass": "pg_class",
    "regcollation": '"C"',
    "regconfig": "english",
    "regdictionary": "simple",
    "regnamespace": "pg_catalog",
    "regoper": "||/",
    "regoperator": "+(integer,integer)",
    "regproc": "now",
    "regprocedure": "now()",
    "regrole": "pg_monitor",
    "regtype": "integer",
}
# types whose values a user cannot write (no input function)
NO_INPUT = {"gtsvector"}
# not in pg_catalog, or not one type each: as information_schema names them, ARRAY and USER-DEFINED
EXTRA = {"int_array": ("integer[]", "{1,2,3}"), "text_array": ("text[]", '{a,"b c",NULL}'), "mood": ("mood", "ok")}

BASE_TYPES = """
    SELECT t.typname, format_type(t.oid, NULL) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = 'pg_catalog' AND t.typtype = 'b' AND t.typcategory NOT IN ('A', 'P')
      AND (t.typcategory <> 'Z' OR t.typname = 'char')  -- other internal types have no input
    ORDER BY t.typname
"""


def catalog_types(source_url, *, writable: bool = True) -> dict[str, str]:
    with psycopg.connect(source_url) as conn:
        types = dict(conn.execute(BASE_TYPES).fetchall())
    return {name: sql_type for name, sql_type in types.items() if not (writable and name in NO_INPUT)}


def test_every_catalog_type_has_a_sample_and_a_mapping(source_url):
    types = catalog_types(source_url, writable=False)
    dialect = dialect_for("postgresql")
    assert sorted(set(types) - set(SAMPLES) - NO_INPUT) == [], "add a sample value of the new type"
    for name, sql_type in types.items():
        dialect.spark_type(ColumnInfo(f"c_{name}", sql_type))  # raises for a type the map lacks


def as_source_text(value, sql_type: str) -> str | None:
    """A Delta value written as PostgreSQL prints it (session time zone UTC)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes | bytearray):
        return "\\x" + bytes(value).hex()
    if isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S") + (
            f".{value.microsecond:06d}".rstrip("0") if value.microsecond else ""
        )
        return text + ("+00" if sql_type == "timestamp with time zone" else "")
    if isinstance(value, date):
        return value.isoformat()
    return repr(value) if isinstance(value, float) else str(value)


def xml_input_works(source_url) -> bool:
    with psycopg.connect(source_url) as conn:
        try:
            conn.execute("SELECT '<a/>'::xml")
        except psycopg.errors.FeatureNotSupported:
            return False
    return True


@pytest.fixture
def all_types(source_url, source_sql) -> dict[str, str]:
    """column -> declared type of a one-row table with a column of every type."""
    columns = {f"c_{name}": sql_type for name, sql_type in catalog_types(source_url).items()}
    source_sql("CREATE TYPE mood AS ENUM ('ok', 'meh')")
    columns.update({f"c_{name}": sql_type for name, (sql_type, _) in EXTRA.items()})
    samples = {f"c_{name}": SAMPLES[name] for name in catalog_types(source_url)}
    samples.update({f"c_{name}": sample for name, (_, sample) in EXTRA.items()})
    if not xml_input_works(source_url):
        samples["c_xml"] = None  # a server built without libxml has the type but parses no value
    declared = ", ".join(f"{col} {sql_type}" for col, sql_type in columns.items())
    source_sql(f"CREATE TABLE all_types (id int PRIMARY KEY, {declared})")
    casts = ", ".join(f"CAST(%s AS {sql_type})" for sql_type in columns.values())
    source_sql(f"INSERT INTO all_types VALUES (1, {casts})", list(samples.values()))
    source_sql("INSERT INTO all_types (id) VALUES (2)")  # and NULL in every column
    return columns


def test_one_value_of_every_type_loads_as_the_source_has_it(cli, source_url, all_types):
    key = cli.add("all_types", "full")
    cli.run(key)

    with psycopg.connect(source_url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        text = ", ".join(f"{col}::text" for col in all_types)
        source = {
            i: dict(zip(all_types, rest, strict=True)) for i, *rest in conn.execute(f"SELECT id, {text} FROM all_types")
        }
    target = {r[0]: dict(zip(all_types, r[1:], strict=True)) for r in cli.rows(key, "id", *all_types)}

    mismatches = {}
    for i in (1, 2):
        for col, sql_type in all_types.items():
            want, have = source[i][col], target[i][col]
            same = Decimal(want) == have if isinstance(have, Decimal) else as_source_text(have, sql_type) == want
            if not same:
                mismatches[f"{i}.{col} ({sql_type})"] = (want, have)
    assert mismatches == {}

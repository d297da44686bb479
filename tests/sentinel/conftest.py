"""A PostgreSQL pair (two databases on the test server) holding the same table, and drift between them."""

import itertools
import os
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from tests import canary
from tests.sentinel.icu import DEBIAN_BIN, start_icu_server

_names = itertools.count()

SCHEMA = """CREATE TABLE accounts (id int PRIMARY KEY, name text, note text, balance numeric(12,2),
                                   opened timestamp(6), code char(5))"""
ROWS = """INSERT INTO accounts SELECT g, 'acct ' || g, CASE WHEN g %% 3 = 0 THEN NULL ELSE 'n' || g END, g * 1.25,
              timestamp '2024-01-01' + g * interval '1 minute 0.000123 second', 'C' || g %% 100
          FROM generate_series(1, %s) g"""


@pytest.fixture
def pair(new_database):
    urls = {side: new_database() for side in ("source", "target")}

    def sql(side, query, params=None):
        with psycopg.connect(urls[side]) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    for side in urls:
        sql(side, SCHEMA)
        sql(side, ROWS, (1000,))
    pair.sql = sql
    pair.urls = urls
    return pair


def drift(pair):
    t = lambda q, p=None: pair.sql("target", q, p)  # noqa: E731
    t("UPDATE accounts SET name = 'changed' WHERE id = 10")
    t("DELETE FROM accounts WHERE id IN (20, 999)")  # missing in target
    t("INSERT INTO accounts (id, name) VALUES (5000, 'only on DR')")  # missing in source
    t("UPDATE accounts SET note = '' WHERE id = 3")  # NULL at the source, '' on DR
    t("UPDATE accounts SET note = 'NULL' WHERE id = 6")  # NULL vs the text 'NULL'
    t("UPDATE accounts SET balance = balance + 0.01 WHERE id = 500")
    t("UPDATE accounts SET opened = opened + interval '1 microsecond' WHERE id = 700")
    t("UPDATE accounts SET name = 'ünïcödé ☃' WHERE id = 800")
    pair.sql("source", "UPDATE accounts SET name = 'ünïcödé ☃' WHERE id = 801")


# -- a second server with ICU: pgserver's PostgreSQL 16 build has no ICU (only libc C, POSIX, C.UTF-8), so
# collation differences are tested on Debian's PostgreSQL 15, which links ICU 72 --------------------------


@pytest.fixture(scope="session")
def icu_server():
    if not DEBIAN_BIN:
        pytest.fail("the collation tests need Debian's postgresql package (it links ICU): run `make system-packages`")
    base = Path(tempfile.mkdtemp(prefix="sentinel-icu-"))
    url, stop = start_icu_server(base)
    canary.watch_folder(base, "the ICU PostgreSQL's folder")
    canary.watch_server(url, "the ICU PostgreSQL")
    yield url
    stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def icu_pair(icu_server):
    """Two databases on the ICU server: ``create(source_options, target_options)`` gives the pair, each
    database created with those CREATE DATABASE options (such as an ICU locale)."""
    made = []

    def create(source: str = "", target: str = ""):
        urls = {}
        with psycopg.connect(icu_server, autocommit=True) as conn:
            for side, options in (("source", source), ("target", target)):
                name = f"icu_{os.getpid()}_{next(_names)}"
                conn.execute(f"CREATE DATABASE {name} TEMPLATE template0 {options}")
                made.append(name)
                urls[side] = icu_server.replace("/postgres?", f"/{name}?")

        def sql(side, query, params=None):
            with psycopg.connect(urls[side]) as conn:
                cur = conn.execute(query, params)
                return cur.fetchall() if cur.description else []

        create.urls, create.sql = urls, sql
        return create

    yield create
    with psycopg.connect(icu_server, autocommit=True) as conn:
        for name in made:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

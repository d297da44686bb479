"""The demo source database: one table per load strategy, with data generated in PostgreSQL."""

from __future__ import annotations

import psycopg

SCHEMA = [
    """CREATE TABLE customers (customer_id int PRIMARY KEY, name text NOT NULL, "Credit Limit" numeric(10,2),
                               country char(2))""",
    """INSERT INTO customers SELECT g, 'Customer ' || g, (g % 50) * 100, (ARRAY['DE','FR','US','JP'])[1 + g % 4]
       FROM generate_series(1, 500) g""",
    """CREATE TABLE orders (order_id bigint PRIMARY KEY, customer_id int, status text, amount numeric(12,2),
                            updated_at timestamp(6) NOT NULL)""",
    """INSERT INTO orders SELECT g, 1 + g % 500, 'new', round((g % 997) * 1.37, 2),
              timestamp '2024-01-01' + g * interval '17 minutes 3.25 seconds'
       FROM generate_series(1, 5000) g""",
    "CREATE TABLE events (event_id bigint PRIMARY KEY, kind text, payload jsonb)",
    """INSERT INTO events SELECT g, (ARRAY['click','view','buy'])[1 + g % 3], jsonb_build_object('n', g)
       FROM generate_series(1, 10000) g""",
    """CREATE TABLE daily_metrics (metric_date date, site text, visits int, revenue numeric(12,2),
                                   PRIMARY KEY (metric_date, site))""",
    """INSERT INTO daily_metrics SELECT d::date, s, 1000 + (extract(doy FROM d)::int * 7) % 300, 99.5
       FROM generate_series(current_date - 13, current_date, interval '1 day') d,
            (VALUES ('eu'), ('us'), ('apac')) v(s)""",
    "CREATE TABLE products (product_id int PRIMARY KEY, name text, price numeric(8,2), updated_at timestamp NOT NULL)",
    """INSERT INTO products SELECT g, 'Product ' || g, 9.99 + g, timestamp '2024-01-01' + g * interval '1 hour'
       FROM generate_series(1, 200) g""",
    "CREATE TABLE transactions (txn_id bigint PRIMARY KEY, account text, amount numeric(14,2), booked_at timestamptz)",
    """INSERT INTO transactions SELECT g, 'ACC-' || (g % 97), (g % 1000) - 500.25,
              timestamptz '2023-06-01 00:00+00' + g * interval '1 hour'
       FROM generate_series(1, 10000) g""",
]

CHANGES = [
    # incremental: updates and inserts, some at the very timestamp of the current watermark
    "UPDATE orders SET status = 'shipped', updated_at = timestamp '2024-03-01' WHERE order_id % 100 = 0",
    """INSERT INTO orders SELECT g, 7, 'new', 10, (SELECT max(updated_at) FROM orders WHERE order_id <= 5000)
       FROM generate_series(5001, 5003) g""",
    # append_only: new events
    "INSERT INTO events SELECT g, 'view', '{}' FROM generate_series(10001, 10250) g",
    # rolling: today's numbers change
    "UPDATE daily_metrics SET visits = visits + 1 WHERE metric_date = current_date",
    # chunked_backfill (incremental from now on): late transactions
    "INSERT INTO transactions VALUES (10001, 'ACC-1', 42, now())",
]


def create(url: str) -> None:
    with psycopg.connect(url) as conn:
        for statement in SCHEMA:
            conn.execute(statement)


def change(url: str) -> None:
    with psycopg.connect(url) as conn:
        for statement in CHANGES:
            conn.execute(statement)

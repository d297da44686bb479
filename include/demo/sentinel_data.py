"""The sentinel demo's prod and DR databases: the same two tables, then drift injected on DR."""

from __future__ import annotations

import psycopg

TABLES = [
    """CREATE TABLE customers (customer_id int PRIMARY KEY, name text, email text, credit numeric(12,2),
                               updated_at timestamp(6))""",
    """INSERT INTO customers SELECT g, 'Customer ' || g,
              CASE WHEN g % 10 = 0 THEN NULL ELSE 'c' || g || '@example.com' END,
              g * 10.5, timestamp '2024-01-01' + g * interval '37 seconds'
       FROM generate_series(1, 10000) g""",
    """CREATE TABLE order_lines (order_id int, line_no int, sku text, qty int, PRIMARY KEY (order_id, line_no))""",
    """INSERT INTO order_lines SELECT o, l, 'SKU-' || (o * l % 500), l FROM generate_series(1, 5000) o,
              generate_series(1, 4) l""",
]

DRIFT = [
    "UPDATE customers SET email = '' WHERE customer_id = 10",  # NULL in prod, '' on DR
    "UPDATE customers SET credit = credit + 1 WHERE customer_id IN (42, 4242)",
    "DELETE FROM customers WHERE customer_id IN (7, 7777)",  # missing on DR
    "INSERT INTO customers (customer_id, name) VALUES (99999, 'only on DR')",
    "UPDATE order_lines SET qty = 0 WHERE order_id = 123 AND line_no = 2",
    "DELETE FROM order_lines WHERE order_id = 4999",
]


def create(prod_url: str, dr_url: str) -> None:
    for url in (prod_url, dr_url):
        with psycopg.connect(url) as conn:
            for statement in TABLES:
                conn.execute(statement)
    with psycopg.connect(dr_url) as conn:
        for statement in DRIFT:
            conn.execute(statement)

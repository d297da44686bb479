"""DB Sentinel: compares a table between two databases chunk by chunk on the primary key, re-verifies the
differences and writes sync SQL. A plain library and CLI: no Airflow import here."""

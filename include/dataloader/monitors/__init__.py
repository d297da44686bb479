"""What the monitors decide, as plain functions over the control repository (no Airflow import here):
stuck loads, failed loads and their retry analysis, landed tables, reconciliation with Airflow."""

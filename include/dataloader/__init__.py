"""The DataLoader as a plain Python library: control rows in, Delta tables out. No Airflow import here."""

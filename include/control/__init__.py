"""The control database: schema migrations, control rows and their state transitions.

Shared by the loader, the monitors and the comparator's audit log. No Airflow import here.
"""

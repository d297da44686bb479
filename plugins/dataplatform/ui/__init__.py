"""The operator's page: control rows, their runs and history, and DB Sentinel reports, inside the Airflow UI.

A FastAPI app that Airflow's API server mounts (the plugin is ``plugins/dataplatform_ui.py``), behind
Airflow's own login; it reads the control database through the ``dataloader_control`` connection and
changes it only through the guarded transitions of ``include/control``.
"""

# The production image: the official Airflow 3.3.2 image plus this package's pinned dependencies.
FROM apache/airflow:3.3.2-python3.11

COPY requirements.txt /requirements.txt
RUN pip install --no-cache-dir -r /requirements.txt

# The package's code, importable as `include` and `dataplatform`. Not in /opt/airflow/plugins: Airflow
# imports every file of its plugins folder as a top-level module; that folder holds only the package's one
# AirflowPlugin, the operator page (plugins/dataplatform_ui.py).
# Deployed from git (README, Deployment), the dag-processor and the workers run the bundle's copy of these
# files, versioned with the DAGs; the triggerer, which loads no DAG bundle, runs this copy.
ENV PYTHONPATH=/opt/airflow/project:/opt/airflow/project/plugins \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/project/dags
COPY --chown=airflow:root .airflowignore /opt/airflow/project/.airflowignore
COPY --chown=airflow:root include/ /opt/airflow/project/include/
COPY --chown=airflow:root plugins/ /opt/airflow/project/plugins/
COPY --chown=airflow:root dags/ /opt/airflow/project/dags/
COPY --chown=airflow:root plugins/dataplatform_ui.py /opt/airflow/plugins/dataplatform_ui.py

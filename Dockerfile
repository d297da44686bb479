# The production image: the official Airflow 3.3.2 image plus this package's pinned dependencies.
FROM apache/airflow:3.3.2-python3.11

COPY requirements.txt /requirements.txt
RUN pip install --no-cache-dir -r /requirements.txt

# include/ is imported as a package (`include.dataloader`), plugins/ as `dataplatform`.
ENV PYTHONPATH=/opt/airflow:/opt/airflow/plugins
COPY --chown=airflow:root include/ /opt/airflow/include/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
COPY --chown=airflow:root dags/ /opt/airflow/dags/

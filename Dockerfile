# The k1n-airflow image: Airflow's own, plus the project's runtime requirements and code.
# docker-compose.yaml builds it; `docker build -t k1n-airflow .` does the same by hand.
FROM apache/airflow:3.3.2-python3.11

# Runtime requirements only (the embedded PostgreSQL and the test tools are dev-only), at the
# versions the project was tested with.
COPY --chown=airflow:0 requirements.txt constraints.txt /opt/airflow/k1n-requirements/
RUN pip install --no-cache-dir \
      -r /opt/airflow/k1n-requirements/requirements.txt \
      -c /opt/airflow/k1n-requirements/constraints.txt

COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 ops/ /opt/airflow/ops/
COPY --chown=airflow:0 airflow_settings.yaml /opt/airflow/

# DAG files import `k1n`; Airflow itself adds only dags/ and plugins/ to the path.
ENV PYTHONPATH=/opt/airflow

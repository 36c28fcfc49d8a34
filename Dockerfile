# The k1n-airflow image: Airflow's own, plus the project's runtime requirements and code.
# docker-compose.yaml builds it; `docker build -t k1n-airflow .` does the same by hand.
FROM apache/airflow:3.3.2-python3.11

# Runtime requirements only (the embedded PostgreSQL and the test tools are dev-only), at the
# versions the project was tested with.
COPY --chown=airflow:0 requirements.txt constraints.txt /opt/airflow/k1n-requirements/
RUN pip install --no-cache-dir \
      -r /opt/airflow/k1n-requirements/requirements.txt \
      -c /opt/airflow/k1n-requirements/constraints.txt

# The run-analysis plugin is a distribution of its own: Airflow loads it from its
# `airflow.plugins` entry point (nothing copied into plugins/, no PYTHONPATH).
COPY --chown=airflow:0 packages/airflow-bottleneck/ /tmp/airflow-bottleneck/
RUN pip install --no-cache-dir --no-deps /tmp/airflow-bottleneck && rm -rf /tmp/airflow-bottleneck

COPY --chown=airflow:0 pyproject.toml airflow_settings.yaml /opt/airflow/
COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 ops/ /opt/airflow/ops/
# The project as the package `k1n` (from include/k1n; never a top-level `include`) with the
# report extension of its DAGs; editable, so include/ and ops/ stay where Astro projects
# keep them and the agent scripts find the project.
RUN pip install --no-cache-dir --no-deps -e /opt/airflow

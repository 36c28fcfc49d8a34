"""Laptop tooling of the K1N project, never imported by DAG or task code and not in the image:
the embedded stack (`stack`: PostgreSQL, api-server, scheduler, dag-processor, triggerer as
supervised processes), `make demo` (`demo`), `make airflow` (`serve`) and `make cluster`
(`cluster`: the compose topology as local processes)."""

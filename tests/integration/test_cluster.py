"""The docker-compose topology for real, as local processes (`make cluster`): CeleryExecutor,
two workers that share no local disk, task data and task logs in an S3 endpoint on loopback.
The optimized workflow succeeds, runs on both workers, overlaps 3 || 4 || 5, and publishes
its generated code once, consistently, where every worker reads it."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import datetime
from pathlib import Path

import boto3
import pytest

from k1n.storage import key_for
from k1n.workflow.names import CLEAN_UP_TASK_ID, CODEGEN_STAGE_TASK_IDS, OPTIMIZED_DAG_ID
from k1n.workflow.spec import CODEGEN_READERS, load_spec
from k1n_local.cluster import BUCKET, WORKER_NAMES, LocalCluster
from k1n_local.demo import RunRecord
from tests.integration.conftest import OPTIMIZED_TIME_SCALE

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"))
    with cluster.running():
        yield cluster


@pytest.fixture(scope="module")
def run(cluster) -> RunRecord:
    with cluster.stack.client() as client:
        client.wait_for_dag(OPTIMIZED_DAG_ID)
        client.unpause(OPTIMIZED_DAG_ID)
        run_id = client.trigger(OPTIMIZED_DAG_ID, conf={"time_scale": OPTIMIZED_TIME_SCALE})
        client.wait_for_run(OPTIMIZED_DAG_ID, run_id, timeout=900)
        return RunRecord.fetch(client, OPTIMIZED_DAG_ID, run_id, label="cluster")


CHECK_RESULTS = "storage/check-results/"


@pytest.fixture(scope="module")
def bucket(cluster, run) -> dict[str, bytes]:
    """The bucket once every task's log is in it: a worker's supervisor uploads a task's log
    after it has reported the task's state, so the run can end a moment before its last log
    arrives."""
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{cluster.s3_port}",
        aws_access_key_id="k1n-local",
        aws_secret_access_key="k1n-local-secret",
        region_name="us-east-1",
    )
    deadline = time.monotonic() + 60
    pages = s3.get_paginator("list_objects_v2")  # a page holds at most 1 000 keys
    while True:
        keys = [
            item["Key"]
            for page in pages.paginate(Bucket=BUCKET)
            for item in page.get("Contents", [])
        ]
        logs = [key for key in keys if key.startswith("logs/") and run.run_id in key]
        if len(logs) >= len(run.spans) or time.monotonic() > deadline:
            break
        time.sleep(1)
    # The checks' stored results are many small objects: listed, not read.
    return {
        key: b""
        if key.startswith(CHECK_RESULTS)
        else s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        for key in keys
    }


def test_the_run_succeeds_on_both_workers(run):
    assert run.state == "success", [(s.task_id, s.state) for s in run.spans if s.state != "success"]
    assert {span.hostname for span in run.spans} == set(WORKER_NAMES)


def test_independent_tasks_overlap_across_workers(run):
    assert run.all_overlap([3, 4, 5])


def test_generated_code_was_published_once_and_every_checker_read_that_snapshot(
    cluster, run, bucket
):
    with cluster.stack.client() as client:
        publish = f"{load_spec().task(8).airflow_task_id}.{CODEGEN_STAGE_TASK_IDS[-1]}"
        written = client.xcom(OPTIMIZED_DAG_ID, run.run_id, publish)
        snapshot = written["value"]["snapshot"]
        for task in load_spec().tasks:
            if task.handler in CODEGEN_READERS:
                result = client.xcom(OPTIMIZED_DAG_ID, run.run_id, task.airflow_task_id)
                assert result["value"]["snapshot"] == snapshot, task.airflow_task_id
    codegen = f"storage/codegen/{key_for(OPTIMIZED_DAG_ID)}"
    assert json.loads(bucket[f"{codegen}/CURRENT"])["snapshot"] == snapshot
    snapshots = {key.split("/")[4] for key in bucket if key.startswith(f"{codegen}/snapshots/")}
    assert snapshots == {snapshot}
    assert {
        f"{codegen}/snapshots/{snapshot}/{name}" for name in ("code.tar.gz", "manifest.json")
    } <= set(bucket)


def test_the_checks_results_are_in_the_object_store_and_no_claim_is_left(bucket):
    for check in ("run_unit_tests", "run_static_analysis", "run_security_scan"):
        stored = [key for key in bucket if key.startswith(f"{CHECK_RESULTS}{check}/")]
        assert stored, check
        assert not [key for key in stored if "/claims/" in key], check


def test_the_teardown_removed_the_run_staging_and_logs_are_in_the_object_store(run, bucket):
    (teardown,) = [span for span in run.spans if span.task_id == CLEAN_UP_TASK_ID]
    assert teardown.state == "success"
    prefix = f"storage/runs/{key_for(OPTIMIZED_DAG_ID)}/{key_for(run.run_id)}"
    assert f"{prefix}/run.json" in bucket
    assert not [key for key in bucket if key.startswith(f"{prefix}/codegen/")]
    logs = [key for key in bucket if key.startswith("logs/") and run.run_id in key]
    assert len(logs) >= len(run.spans)


def test_workers_left_nothing_on_their_local_disks_but_caches(cluster, run):
    for worker in cluster.stack.celery_workers:
        leftovers = [p for p in Path(worker.local_dir, "tmp").rglob("*") if "k1n" in p.name]
        assert leftovers == [], worker.name


def test_the_cluster_registers_each_plugin_once(cluster):
    """`make cluster` (the compose topology): the report plugin once, from its entry point."""
    listed = json.loads(cluster.stack.airflow("plugins", "--output", "json").stdout)
    names = [plugin["name"] for plugin in listed]
    assert names.count("bottlenecks") == 1, names
    assert names.count("k1n_legacy_urls") == 1, names


def test_the_broker_is_a_redis_of_its_own_with_a_password_nobody_sees(cluster, run):
    import psutil
    import redis

    assert cluster.redis_port != 6379
    broker = cluster.stack.airflow_env()["AIRFLOW__CELERY__BROKER_URL"]
    assert broker.startswith(f"redis://:{cluster.redis_password}@127.0.0.1:{cluster.redis_port}/")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=cluster.redis_port).ping()  # no password, no broker
    assert redis.Redis(port=cluster.redis_port, password=cluster.redis_password).ping()
    command_lines = [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])]
    assert not [line for line in command_lines if cluster.redis_password in line]


def test_the_cluster_runs_the_fab_auth_manager_with_the_compose_users(cluster):
    """As docker-compose.yaml: per-DAG permissions, users made by `k1n users`."""
    env = cluster.stack.airflow_env()
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("FabAuthManager")
    listed = cluster.stack.airflow("users", "list", "--output", "json").stdout
    users = json.loads(listed.strip().splitlines()[-1])  # log lines may come first
    assert {(user["username"], tuple(user["roles"])) for user in users} >= {("admin", ("Admin",))}


def test_workers_run_without_database_url_keys_or_connections(cluster, run):
    """As docker-compose.yaml's workers: the run succeeded with none of them in the env."""
    import psutil

    from k1n_local import processes
    from k1n_local.stack import withheld_from_workers

    workers = []
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if "celery worker" in command:
            with contextlib.suppress(psutil.Error):
                environment = process.environ()
                if environment.get(processes.STACK_ID_ENV) == cluster.stack.stack_id:
                    workers.append(environment)
    assert len(workers) >= len(WORKER_NAMES)
    for environment in workers:
        assert [key for key in environment if withheld_from_workers(key)] == []
    assert withheld_from_workers("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")  # the check can fail


# Two people with per-DAG roles on the cluster's real api-server (FAB auth manager).
PROBE_PASSWORD = "probe-password-7d21e9"
PROBE_USERS = {
    "reads-optimized": [f"DAG:{OPTIMIZED_DAG_ID}"],
    "reads-other-dag": ["DAG:k1n_weekly_baseline"],
}


@pytest.fixture(scope="module")
def tokens(cluster) -> dict[str, str]:
    import subprocess
    import sys

    import httpx

    env = {
        **cluster.stack.airflow_env(),
        "PROBE_USERS": json.dumps(PROBE_USERS),
        "PROBE_PASSWORD": PROBE_PASSWORD,
    }
    script = Path(__file__).with_name("cluster_users.py")
    made = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, made.stderr[-2000:]
    found = {}
    for username in PROBE_USERS:
        login = httpx.post(
            f"{cluster.stack.base_url}/auth/token",
            json={"username": username, "password": PROBE_PASSWORD},
            timeout=30,
        )
        assert login.status_code in (200, 201), login.text[:200]
        found[username] = login.json()["access_token"]
    return found


def test_per_dag_roles_on_the_real_api_server_show_only_their_runs(cluster, run, tokens):
    """Every route and page state of the plugin, asked over HTTP by two people: the one whose
    role may not read the optimized DAG gets 403 (or lists without it) and no trace of its run;
    the one who may read it sees it."""
    from types import SimpleNamespace

    import httpx

    from tests.airflow_bottleneck.web.access_cases import CASES, traces

    with cluster.stack.client() as client:
        record = client.dag_run(OPTIMIZED_DAG_ID, run.run_id)
    the_run = SimpleNamespace(
        dag_id=OPTIMIZED_DAG_ID,
        run_id=run.run_id,
        key=f"{OPTIMIZED_DAG_ID}/{run.run_id}",
        start=datetime.fromisoformat(record["start_date"]),
        end=datetime.fromisoformat(record["end_date"]),
    )
    for case, (make_path, refused_status) in CASES.items():
        url = cluster.stack.base_url + make_path(the_run, the_run)
        for username, token in tokens.items():
            answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
            found = [trace for trace in traces(the_run) if trace in answer.text]
            if username == "reads-other-dag":
                assert answer.status_code == refused_status, (case, answer.text[:200])
                assert found == [], (case, found)
            else:
                assert answer.status_code == 200, (case, answer.text[:200])
                if case not in ("schema", "DAG list", "compare markdown"):
                    assert found, case


def test_the_metrics_connection_is_a_role_that_owns_only_its_database(cluster):
    """As docker-compose.yaml's airflow-init: the nightly DAGs' metrics connection can build
    its schema in its own database and cannot even connect to the metadata database."""
    import psycopg2

    from k1n.metrics.schema import ensure_schema

    listed = cluster.stack.airflow("connections", "get", "k1n_metrics", "-o", "json").stdout
    (conn,) = json.loads(listed.strip().splitlines()[-1])
    assert conn["login"] == "k1n_metrics"
    uri = cluster.stack.database.ensure_owner_role(
        "k1n_metrics", cluster.stack._persistent_secret("metrics_password"), "k1n_metrics"
    )
    with contextlib.closing(psycopg2.connect(uri)) as metrics:
        assert ensure_schema(metrics) >= 1
    metadata = uri.replace("/k1n_metrics?", "/airflow?")
    with pytest.raises(psycopg2.OperationalError, match="CONNECT privilege"):
        psycopg2.connect(metadata)

"""`report_main` and `compare_main`: formats, the old layout, and one-line errors with exit 2."""

from __future__ import annotations

import csv
import io
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from k1n.reporting.cli import compare_main, report_main
from k1n.workflow.spec import load_spec
from tests.airflow_bottleneck.analysis.helpers import (
    BASE,
    FIXTURES,
    FakeAirflow,
    fixture,
    reference_profiles,
    rest_tasks,
    write_profile,
)

OPTIMIZED = "k1n_22task_optimized/manual__2026-11-25T20:00:00+00:00"


@pytest.fixture(scope="module")
def spec():
    return load_spec()


@pytest.fixture
def profiles(tmp_path: Path, spec) -> Path:
    return reference_profiles(tmp_path / "profiles", spec)


@pytest.fixture(scope="module")
def airflow_url() -> Iterator[str]:
    """A local HTTP server answering like Airflow's REST API for the optimized fixture run."""
    from k1n.dag_builders.workflow import build_optimized_dag

    fake = FakeAirflow(
        {
            ("k1n_22task_optimized", "manual__2026-11-25T20:00:00+00:00"): fixture(
                "airflow_optimized_run.json"
            )
        },
        dags={"k1n_22task_optimized": rest_tasks(build_optimized_dag())},
    )

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ") or None
            status, payload = fake.handle(
                self.command, unquote(url.path), dict(parse_qsl(url.query)), body, token
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_text_report_of_the_reference_profile(profiles: Path, capsys) -> None:
    assert report_main([f"profiles:{profiles}"]) == 0
    out = capsys.readouterr().out
    assert "7800.0 s (130.0 min)" in out
    table = out.split("slowest tasks", 1)[1]
    first_row = next(line for line in table.splitlines() if line.strip().startswith("1*"))
    assert "8 Code Generation" in first_row
    assert "900.0 s" in first_row and "11.5 %" in first_row
    over = out.split("Tasks over 10%", 1)[1].split("\n\n", 1)[0]
    assert "8 Code Generation" in over and "7 Pattern" not in over
    for section in ("Critical path", "Where the wall time went", "What if only", "Targets"):
        assert section in out
    # The old runner's order is the graph that ran: its chain accounts for the whole wall.
    assert "accounts for 7800.0 s, 100.0 % of the wall time" in out


def test_report_options_instead_of_a_source(profiles: Path, capsys) -> None:
    assert report_main(["--profiles", str(profiles), "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "Top 3 slowest tasks" in out


def test_json_report(profiles: Path, capsys) -> None:
    assert report_main([f"profiles:{profiles}", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["wall_seconds"] == document["total_task_seconds"] == 7800
    assert document["tasks"][0] == {
        **document["tasks"][0],
        "task": "task_08_code_generation",
        "seconds": 900.0,
        "share": pytest.approx(0.115385),
    }
    assert document["graph_source"] == "execution"
    assert document["critical_path"]["seconds"] == 7800
    assert document["critical_path"]["tasks"][0] == "task_01_security_audit"
    assert document["what_if"]["seconds"] == 4620
    assert [t["spec_id"] for t in document["tasks"] if t["share"] > 0.1] == [8]
    assert document["overhead"]["idle_seconds"] == 0


def test_markdown_and_csv_reports(profiles: Path, capsys) -> None:
    assert report_main([f"profiles:{profiles}", "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("# Bottleneck report")
    assert "| 1 | 8 Code Generation | ran | 900.0 s | 11.5 % |" in markdown

    assert report_main([f"profiles:{profiles}", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 22
    assert rows[0]["task"] == "task_08_code_generation"
    assert rows[0]["seconds"] == "900.0" and rows[0]["critical"] == "True"


def test_write_summary_next_to_the_profiles(profiles: Path, tmp_path: Path, capsys) -> None:
    assert report_main([f"profiles:{profiles}", "--write-summary"]) == 0
    assert "7800.0 s (130.0 min)" in capsys.readouterr().out
    summary = json.loads((profiles / "summary.json").read_text())
    assert summary["total_duration_min"] == 130.0
    assert summary["slowest_task"]["task_id"] == 8
    out = tmp_path / "elsewhere.json"
    assert (
        report_main(
            [
                f"profiles:{profiles}",
                "--write-summary",
                str(out),
                "--output",
                str(tmp_path / "report.txt"),
            ]
        )
        == 0
    )
    assert json.loads(out.read_text()) == summary
    assert "7800.0 s (130.0 min)" in (tmp_path / "report.txt").read_text()
    assert capsys.readouterr().out == ""


def test_conductor_report(capsys) -> None:
    path = FIXTURES / "conductor_execution.json"
    assert report_main([f"conductor:{path}", "--format", "json", "--no-detail"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["instances"] is None
    assert "phase1_join" not in {t["task"] for t in document["tasks"]}


def test_airflow_report_from_a_running_api(airflow_url: str, capsys, monkeypatch) -> None:
    monkeypatch.setenv("K1N_AIRFLOW_PASSWORD", "secret")
    code = report_main([f"airflow:{OPTIMIZED}", "--airflow-url", airflow_url, "--format", "json"])
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert document["time_scale"] == pytest.approx(1 / 60)
    assert document["mapped"][0]["count"] == 4
    targets = {t["key"]: t["met"] for t in document["targets"]}
    assert targets["workflow_minutes_max"] is True
    assert targets["quality_gate_pass_rate_min"] is True


def test_compare_baseline_profile_with_optimized_run(
    profiles: Path, airflow_url: str, capsys, monkeypatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("secret\n" * 8))  # one line per command
    args = [
        f"profiles:{profiles}",
        f"airflow:{OPTIMIZED}",
        "--airflow-url",
        airflow_url,
        "--password-stdin",
    ]
    assert compare_main([*args, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    # Baseline 7800 s against the optimized run of 79.82 s at 1/60 replayed with its stand-ins
    # scaled back: less than 79.82 x 60 = 4789.2 s, as its real work (Task 8's 13 s, the
    # checks) and orchestration stay seconds.
    wall = document["b"]["wall_seconds"]
    assert document["a"]["wall_seconds"] == 7800.0
    assert 2000 < wall < 4789.2
    assert document["verdict"] == "faster"
    assert document["factor"] == pytest.approx(7800 / wall, rel=1e-4)
    assert document["percent"] == pytest.approx((7800 - wall) / 7800 * 100, abs=0.01)
    prediction = document["prediction"]
    assert prediction["predicted_b_wall_seconds"] == pytest.approx(4620)
    assert prediction["measured_b_wall_seconds"] == pytest.approx(wall)
    task8 = next(t for t in document["tasks"] if t["key"] == "spec 8")
    assert task8["a_seconds"] == 900 and task8["b_seconds"] == pytest.approx(13.02, abs=0.01)
    a_targets = {t["key"]: t["met"] for t in document["targets_a"]}
    b_targets = {t["key"]: t["met"] for t in document["targets_b"]}
    assert a_targets["workflow_minutes_max"] is False and b_targets["workflow_minutes_max"] is True

    assert compare_main(args) == 0
    text = capsys.readouterr().out
    factor, percent = 7800 / wall, (7800 - wall) / 7800 * 100
    assert f"{factor:.2f}\u00d7 faster, {percent:.1f} % less wall time" in text
    assert "A's declared-dependency what-if predicted 77.0 min for B" in text
    assert compare_main([*args, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {row["key"] for row in rows} == {f"spec {n}" for n in range(1, 23)}
    assert compare_main([*args, "--format", "markdown"]) == 0
    title = capsys.readouterr().out.splitlines()[0]
    assert title.startswith("# profiles profiles (A) against k1n\\_22task\\_optimized manual")


def _bad_profile(tmp_path: Path) -> str:
    write_profile(tmp_path, 1, BASE, -60, duration_ms=60_000)  # ends before it starts
    return f"profiles:{tmp_path}"


def _malformed(tmp_path: Path) -> str:
    (tmp_path / "task-1-profile.json").write_text('{"task_id": 1,')
    return f"profiles:{tmp_path}"


def _malformed_conductor(tmp_path: Path) -> str:
    (tmp_path / "run.json").write_text("not json")
    return f"conductor:{tmp_path / 'run.json'}"


# What --password-stdin reads in the bad-input cases: the fake Airflow's password but here.
STDIN = {"HTTP 401": "x\n"}


@pytest.mark.parametrize(
    ("build_args", "message"),
    [
        (lambda tmp, url: ["profiles:" + str(tmp / "missing")], "not found"),
        (lambda tmp, url: [_malformed(tmp)], "malformed JSON"),
        (lambda tmp, url: [_bad_profile(tmp)], "is before start_time"),
        (lambda tmp, url: [_malformed_conductor(tmp)], "malformed JSON"),
        (lambda tmp, url: ["conductor:" + str(tmp / "none.json")], "file not found"),
        (
            lambda tmp, url: [
                "airflow:k1n_22task_optimized/nope",
                "--airflow-url",
                url,
                "--password-stdin",
            ],
            "unknown run k1n_22task_optimized/nope",
        ),
        (
            lambda tmp, url: [
                f"airflow:{OPTIMIZED}",
                "--airflow-url",
                closed_port_url(),
                "--password-stdin",
            ],
            "cannot reach Airflow",
        ),
        (
            lambda tmp, url: [f"airflow:{OPTIMIZED}", "--airflow-url", url, "--password-stdin"],
            "HTTP 401",
        ),
        (lambda tmp, url: [f"airflow:{OPTIMIZED}", "--airflow-url", url], "no Airflow password"),
        (lambda tmp, url: ["airflow:only-a-dag"], "expected airflow:DAG_ID/RUN_ID"),
        (lambda tmp, url: ["ftp:somewhere"], "unknown source"),
        (lambda tmp, url: [], "name exactly one source"),
        (lambda tmp, url: ["profiles:x", "--format", "pdf"], "invalid choice"),
        (
            lambda tmp, url: ["profiles:x", "--time-scale", "0"],
            "--time-scale: time_scale: 0 is outside",
        ),
        (lambda tmp, url: ["profiles:x", "--spec", str(tmp / "no.yaml")], "file not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, airflow_url: str, capsys, monkeypatch, build_args, message
) -> None:
    monkeypatch.delenv("K1N_AIRFLOW_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(STDIN.get(message, "secret\n")))
    assert report_main(build_args(tmp_path, airflow_url)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    assert "Traceback" not in captured.err


def test_compare_bad_input_is_one_line_and_exit_2(profiles: Path, tmp_path: Path, capsys) -> None:
    assert compare_main([f"profiles:{profiles}", f"profiles:{tmp_path / 'missing'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not found" in err
    assert compare_main([f"profiles:{profiles}"]) == 2
    assert "the following arguments are required" in capsys.readouterr().err


def test_help_exits_0(capsys) -> None:
    assert report_main(["--help"]) == 0
    assert "profiles:DIR" in capsys.readouterr().out


def test_links_planted_in_an_untrusted_profile_folder_are_never_followed(
    profiles: Path, tmp_path: Path, capsys
) -> None:
    """A tarball or CI artifact may carry links where the CLI writes; none is followed."""
    victims = {name: tmp_path / f"victim-{name}" for name in ("summary", "temp", "report-temp")}
    for victim in victims.values():
        victim.write_text("precious\n")
    (profiles / "summary.json").symlink_to(victims["summary"])
    (profiles / ".summary.json.tmp").symlink_to(victims["temp"])
    report = profiles / "report.txt"
    (profiles / ".report.txt.k1n-tmp").symlink_to(victims["report-temp"])

    argv = [f"profiles:{profiles}", "--write-summary", "--output", str(report)]
    assert report_main(argv) == 0

    assert all(victim.read_text() == "precious\n" for victim in victims.values())
    assert not (profiles / "summary.json").is_symlink()  # the link was replaced, not followed
    assert json.loads((profiles / "summary.json").read_text())["total_duration_min"] == 130.0
    assert "7800.0 s (130.0 min)" in report.read_text()
    # No temporary file left beside the planted links.
    assert {p.name for p in profiles.glob(".*")} == {".summary.json.tmp", ".report.txt.k1n-tmp"}

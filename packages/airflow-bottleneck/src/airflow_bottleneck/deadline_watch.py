"""A deadline miss predicted while there is still time to act, in the scheduler.

Airflow's Deadline Alerts fire once a deadline has passed. This watcher fires *before*: the
plugin's listener hands it every DAG run the scheduler sets running; one daemon thread in
the scheduler polls each such run that has a deadline (`look_ahead.run_deadline`) every
`[bottlenecks] deadline_watch_seconds` (e.g. 15; unset or 0, the default: the watch is off),
computes its
forecast and, as soon as the band's *early* edge ends after the deadline, alerts once per
run through an Airflow notifier:

- `[bottlenecks] deadline_notifier`: a `BaseNotifier` subclass by dotted path (default
  `airflow_bottleneck.deadline_watch.DeadlineLogNotifier`, a warning in the scheduler's log),
  e.g. `airflow.providers.slack.notifications.slack.SlackNotifier`;
- `[bottlenecks] deadline_notifier_kwargs`: its keyword arguments as a JSON object; template
  fields see `message`, `dag_id`, `run_id`, `deadline`, `predicted_end` and `task`, e.g.
  `{"slack_conn_id": "slack", "text": "{{ message }}"}`.

Both the prediction and, when the run ends, the outcome (predicted end, actual end, deadline,
missed or not) are recorded in Airflow's audit log (`log` table, events
`bottleneck.deadline_miss_predicted` and `bottleneck.deadline_outcome`), which the UI's audit
log and the REST API's event logs show. A run with no deadline costs one lookup.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

CONFIG_SECTION = "bottlenecks"
POLL_OPTION = "deadline_watch_seconds"
NOTIFIER_OPTION = "deadline_notifier"
NOTIFIER_KWARGS_OPTION = "deadline_notifier_kwargs"
# Off unless set: a scheduler under a database outage hung in LocalExecutor.end() on 2 of 3 CI
# runs with the watch thread in it (never without), cause not established; opt in knowingly.
DEFAULT_POLL_SECONDS = 0.0
POLL_SECONDS_WHEN_ON = 15.0
PREDICTED_EVENT = "bottleneck.deadline_miss_predicted"
OUTCOME_EVENT = "bottleneck.deadline_outcome"


class DeadlineLogNotifier(BaseNotifier):
    """The default: the predicted miss as a warning in the scheduler's log."""

    template_fields = ("text",)

    def __init__(self, text: str = "{{ message }}") -> None:
        super().__init__()
        self.text = text

    def notify(self, context: Any) -> None:
        log.warning("%s", self.text)


@dataclass
class _Watched:
    dag_id: str
    run_id: str
    context: Any = None  # look_ahead.RunContext, computed on the first poll
    alerted: dict[str, Any] | None = None  # what the alert said


@dataclass
class DeadlineWatcher:
    """Running runs under watch, polled by one daemon thread (started on the first run).

    `watch` and `finish` are called by the listener in the scheduler's loop: they only note
    the event (the scheduler's own session and transaction must never be touched there);
    every query, forecast, notification and audit-log row happens in the watch thread, on a
    session of its own."""

    poll_seconds: float = POLL_SECONDS_WHEN_ON
    # False: no thread; the caller runs `check()` itself (tests, a one-off check).
    background: bool = True
    _runs: dict[tuple[str, str], _Watched] = field(default_factory=dict)
    _ended: list[tuple[str, str, str, float | None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None
    _wake: threading.Event = field(default_factory=threading.Event)

    def watch(self, dag_id: str, run_id: str) -> None:
        if self.poll_seconds <= 0:
            return
        with self._lock:
            self._runs.setdefault((dag_id, run_id), _Watched(dag_id, run_id))
            if self.background and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(
                    target=self._loop, name="bottleneck-deadline-watch", daemon=True
                )
                self._thread.start()

    def finish(self, dag_id: str, run_id: str, state: str, end: float | None) -> None:
        """The run ended: its outcome is recorded by the watch thread."""
        with self._lock:
            if (dag_id, run_id) in self._runs:
                self._ended.append((dag_id, run_id, state, end))
        self._wake.set()

    def check(self, now: float | None = None) -> list[dict[str, Any]]:
        """One round: record the outcomes of runs that ended, then poll the others; returns
        the alerts it raised."""
        with self._lock:
            ended, self._ended = self._ended, []
            finished = [(self._runs.pop((d, r), None), state, end) for d, r, state, end in ended]
            watched = [w for w in self._runs.values() if w.alerted is None]
        for run, state, end in finished:
            if run is not None and run.alerted is not None and end is not None:
                _record(OUTCOME_EVENT, run.dag_id, run.run_id, _outcome(run.alerted, state, end))
        return [alert for run in watched if (alert := self._poll(run, now)) is not None]

    def _poll(self, run: _Watched, now: float | None) -> dict[str, Any] | None:
        from airflow.utils.session import create_session

        from airflow_bottleneck import look_ahead
        from airflow_bottleneck.readers import metadata_db

        try:
            with create_session() as session:
                dag_run = look_ahead.find_run(session, run.dag_id, run.run_id)
                if metadata_db.text(dag_run.state) != "running":
                    return None  # its end arrives through the listener
                if run.context is None:
                    run.context = look_ahead.run_context(session, dag_run)
                if run.context.deadline is None:
                    with self._lock:
                        self._runs.pop((run.dag_id, run.run_id), None)
                    return None
                forecast = look_ahead.forecast_for(session, dag_run, now=now, context=run.context)
        except Exception:
            # One run that cannot be forecast must not stop the watch of the others.
            log.exception("deadline watch: cannot forecast %s/%s", run.dag_id, run.run_id)
            return None
        deadline = forecast.deadline
        if deadline is None or not deadline.miss_predicted:
            return None
        alert = _alert(forecast)
        run.alerted = alert
        _record(PREDICTED_EVENT, run.dag_id, run.run_id, alert)
        _notify(alert)
        return alert

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            try:
                self.check()
            except Exception:
                log.exception("deadline watch: poll failed")
            with self._lock:
                if not self._runs and not self._ended:
                    self._thread = None
                    return


def _outcome(alerted: dict[str, Any], state: str, end: float) -> dict[str, Any]:
    return {
        **alerted,
        "state": state,
        "actual_end": _iso(end),
        "missed": end > alerted["deadline_epoch"],
    }


def _alert(forecast: Any) -> dict[str, Any]:
    deadline = forecast.deadline
    start = _epoch(forecast.start)
    task = (forecast.overrunning or forecast.path or [None])[0]
    predicted_end = forecast.expected_end
    if task in forecast.overrunning:
        cause = f"; {task} is overrunning"
    elif task:
        cause = f"; the remaining critical path starts with {task}"
    else:
        cause = ""
    message = (
        f"DAG {forecast.dag_id} run {forecast.run_id} is predicted to miss its deadline "
        f"{deadline.at} ({deadline.source}): expected end {predicted_end}, even the early "
        f"edge {_iso(start + forecast.low_end_offset)} is late{cause}"
    )
    return {
        "dag_id": forecast.dag_id,
        "run_id": forecast.run_id,
        "message": message,
        "deadline": deadline.at,
        "deadline_epoch": start + deadline.offset_seconds,
        "deadline_source": deadline.source,
        "predicted_end": predicted_end,
        "predicted_low_end": _iso(start + forecast.low_end_offset),
        "predicted_at": forecast.observed_at,
        "task": task,
    }


def _notify(alert: dict[str, Any]) -> None:
    try:
        notifier = configured_notifier()
        notifier(dict(alert))
    except Exception:
        log.exception("deadline watch: the notifier failed; the alert was: %s", alert["message"])


def configured_notifier() -> BaseNotifier:
    from airflow.configuration import conf

    path = conf.get(CONFIG_SECTION, NOTIFIER_OPTION, fallback="") or ""
    kwargs_text = conf.get(CONFIG_SECTION, NOTIFIER_KWARGS_OPTION, fallback="") or "{}"
    notifier_class = DeadlineLogNotifier
    if path:
        # Airflow's own import_string is private in 3.x: a dotted path is two lines here.
        module_name, _, class_name = path.rpartition(".")
        notifier_class = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(notifier_class, type) and issubclass(notifier_class, BaseNotifier)):
        raise TypeError(f"[{CONFIG_SECTION}] {NOTIFIER_OPTION}: {path} is not a BaseNotifier")
    kwargs = json.loads(kwargs_text)
    if not isinstance(kwargs, dict):
        raise ValueError(f"[{CONFIG_SECTION}] {NOTIFIER_KWARGS_OPTION} must be a JSON object")
    return notifier_class(**kwargs)


def _record(event: str, dag_id: str, run_id: str, extra: dict[str, Any]) -> None:
    from airflow.models.log import Log
    from airflow.utils.session import create_session

    try:
        with create_session() as session:
            session.add(
                Log(
                    event=event,
                    dag_id=dag_id,
                    run_id=run_id,
                    owner="airflow-bottleneck",
                    extra=json.dumps(extra),
                )
            )
    except Exception:
        log.exception("deadline watch: cannot record %s of %s/%s", event, dag_id, run_id)


def _iso(epoch_seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch_seconds, tz=UTC).isoformat()


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def poll_seconds() -> float:
    from airflow.configuration import conf

    return conf.getfloat(CONFIG_SECTION, POLL_OPTION, fallback=DEFAULT_POLL_SECONDS)


_watcher: DeadlineWatcher | None = None
_watcher_lock = threading.Lock()


def watcher() -> DeadlineWatcher:
    """This process's watcher (the scheduler's, in practice)."""
    global _watcher
    with _watcher_lock:
        if _watcher is None:
            _watcher = DeadlineWatcher(poll_seconds=poll_seconds())
        return _watcher

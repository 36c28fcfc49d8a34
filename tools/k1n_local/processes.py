"""Processes of the local stack: started tagged, supervised, and stopped without orphans.

Airflow starts every task in a process group of its own, under the executor's worker and the
task supervisor, and the command handler starts agents in sessions of their own: signalling a
component's process group does not reach them. So this module tracks processes in two ways
that do not depend on names or groups:

- this process becomes a *child subreaper* (Linux `PR_SET_CHILD_SUBREAPER`): a process
  orphaned below it is re-parented to it instead of to init, so its descendant tree keeps
  every process the stack started while it lives;
- the supervisor records each component's process tree on every pass (pid and start time,
  so a reused pid is never mistaken for one of ours): when a component dies, what it started
  is found even after it was re-parented, and stopped before the component starts again;
- every process started here gets `K1N_STACK_ID` in its environment, which agents and other
  programs the tasks start inherit; the next start (after a crash of this process) finds
  leftovers by that tag. (Airflow's own processes rename themselves with setproctitle, which
  hides their environment from /proc: for them the recorded trees are what counts.)

`stop_all` signals SIGTERM to everything found, waits, then SIGKILLs what is left.
`Supervisor` restarts a component that exits, with exponential backoff and a log line.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

STACK_ID_ENV = "K1N_STACK_ID"
# Which start of which component a process descends from (`scheduler#2`): when a component
# dies, whatever it started dies with it before it is started again.
COMPONENT_ENV = "K1N_COMPONENT"
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False  # not Linux: orphans are found by their tag only


def become_subreaper() -> bool:
    """Make orphaned descendants of this process its children (Linux); whether it worked."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent() -> None:
    """For `preexec_fn`: the child gets SIGTERM when the process that started it dies."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def tagged(stack_id: str, component: str | None = None) -> list[psutil.Process]:
    """Every live process whose environment carries `K1N_STACK_ID=<stack_id>` (and, given
    `component`, `K1N_COMPONENT=<component>`)."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            env = process.environ()
            if process.pid == os.getpid() or env.get(STACK_ID_ENV) != stack_id:
                continue
            if component is None or env.get(COMPONENT_ENV) == component:
                found.append(process)
    return found


def tree(pid: int | None) -> list[psutil.Process]:
    """The process `pid` and every process below it (none if it is gone)."""
    if pid is None:
        return []
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    return []


def stop_all(processes: Iterable[psutil.Process], grace: float = 10.0) -> int:
    """SIGTERM each process, SIGKILL what is left after `grace`; reap our children."""
    targets = {process.pid: process for process in processes if process.pid != os.getpid()}
    for process in targets.values():
        with contextlib.suppress(psutil.Error):
            process.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(list(targets.values()), timeout=grace)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            log.warning(
                "killing %s (pid %s): still running %s s after SIGTERM",
                _name(process),
                process.pid,
                grace,
            )
            process.kill()
    psutil.wait_procs(alive, timeout=5)
    _reap()
    return len(targets)


def _reap() -> None:
    """Collect exited children (re-parented orphans included) so none stays a zombie."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _name(process: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return " ".join(process.cmdline()[:4]) or process.name()
    return "?"


@dataclass
class Component:
    """One long-running process of the stack."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_file: Path
    # Fed to the process at each start and closed: settings that must not show in `ps`.
    stdin: bytes | None = None
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0

    @property
    def generation(self) -> str:
        """This start of the component, as its processes are tagged (`scheduler#0`)."""
        return f"{self.name}#{self.restarts}"

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as out:
            self.process = subprocess.Popen(
                list(self.argv),
                env={**self.env, COMPONENT_ENV: self.generation},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL if self.stdin is None else subprocess.PIPE,
                start_new_session=True,
                preexec_fn=die_with_parent,  # only a prctl call: safe between fork and exec
            )
        if self.stdin is not None:
            assert self.process.stdin is not None
            with self.process.stdin:
                self.process.stdin.write(self.stdin)
        self.started_at = time.monotonic()
        log.info("started %s (pid %s)", self.name, self.process.pid)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Supervisor:
    """Keeps components running: one that exits is started again after a backoff.

    The backoff doubles from `first_backoff` to `max_backoff` while a component keeps dying
    and resets once it has run `stable_after` seconds. A component dying because the database
    is away is restarted until the database is back; the database itself is not stopped.
    """

    components: dict[str, Component] = field(default_factory=dict)
    first_backoff: float = 1.0
    max_backoff: float = 10.0
    stable_after: float = 60.0
    poll: float = 0.5
    on_restart: Callable[[Component], None] | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _due: dict[str, float] = field(default_factory=dict)
    _backoff: dict[str, float] = field(default_factory=dict)
    # generation -> {pid: start time} of every process seen below that component start.
    _known: dict[str, dict[int, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def track(self) -> None:
        """Record the current process tree of every running component."""
        with self._lock:
            for component in self.components.values():
                if component.exit_code() is None:
                    seen = self._known.setdefault(component.generation, {})
                    for process in tree(component.pid):
                        with contextlib.suppress(psutil.Error):
                            seen[process.pid] = process.create_time()

    def processes_of(self, generation: str | None = None) -> list[psutil.Process]:
        """Live processes recorded for one component start (or for all of them)."""
        with self._lock:
            recorded = [
                (pid, created)
                for name, seen in self._known.items()
                if generation is None or name == generation
                for pid, created in seen.items()
            ]
        alive = []
        for pid, created in recorded:
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                if process.create_time() == created:  # not a reused pid
                    alive.append(process)
        return alive

    def add(self, component: Component) -> Component:
        self.components[component.name] = component
        component.start()
        self.track()
        return component

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="k1n-supervisor", daemon=True)
        self._thread.start()

    def check(self) -> None:
        """One supervision pass: record the process trees, restart what exited and is due."""
        self.track()
        now = time.monotonic()
        for component in self.components.values():
            code = component.exit_code()
            if code is None:
                if now - component.started_at > self.stable_after:
                    self._backoff.pop(component.name, None)
                continue
            due = self._due.get(component.name)
            if due is None:
                # Its executor workers and task processes die with it: a task the restarted
                # component runs again must not overlap the one left behind.
                left = {p.pid: p for p in self.processes_of(component.generation)}
                stack_id = component.env.get(STACK_ID_ENV, "")
                left.update({p.pid: p for p in tagged(stack_id, component.generation)})
                left = list(left.values())
                if left:
                    stop_all(left, grace=2.0)
                delay = self._backoff.get(component.name, self.first_backoff)
                self._backoff[component.name] = min(delay * 2, self.max_backoff)
                self._due[component.name] = now + delay
                log.warning(
                    "%s exited with %s; stopped %d process(es) it left; restarting in %.0f s. "
                    "Last lines:\n%s",
                    component.name,
                    code,
                    len(left),
                    delay,
                    component.log_tail(8),
                )
            elif now >= due:
                del self._due[component.name]
                component.restarts += 1
                component.start()
                if self.on_restart:
                    self.on_restart(component)

    def _watch(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.check()
            except Exception:  # a supervisor that dies supervises nothing: log, go on
                log.exception("supervision pass failed")

    def stop_watching(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

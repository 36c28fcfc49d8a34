"""Which run a task belongs to: everything a handler needs beyond its spec entry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from include.k1n import settings

CodegenMode = Literal["baseline", "optimized"]


@dataclass(frozen=True)
class RunContext:
    """Which run a task belongs to; everything a handler needs beyond its spec entry."""

    dag_id: str
    run_id: str
    time_scale: float
    codegen_mode: CodegenMode = "optimized"
    # Test/chaos knobs from the run conf, honoured by the stand-in (profile) handler only:
    # `slow_tasks` {task id: factor} multiplies a task's profiled seconds, `failing_gates`
    # {task id: count} makes that many of its gates fail (capped at its gate count).
    slow_tasks: Mapping[int, float] = field(default_factory=dict)
    failing_gates: Mapping[int, int] = field(default_factory=dict)

    @property
    def work_dir(self) -> Path:
        return settings.run_work_dir(self.dag_id, self.run_id)

    @property
    def codegen_state_dir(self) -> Path:
        return settings.codegen_state_dir(self.dag_id)

    @property
    def codegen_staging_dir(self) -> Path:
        return self.work_dir / "codegen-staging"

    def codegen_engine(self):
        from include.k1n.codegen import CodegenEngine

        return CodegenEngine(self.codegen_state_dir, mode=self.codegen_mode)

"""What a code generation run rebuilds: the plan (parse's output) and its shards."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from k1n.codegen.contracts import DirtyPattern, LibraryEntry, PatternChecks, Plan, Shard
from k1n.codegen.library import Pattern
from k1n.codegen.manifest import Manifest, stale_reason

DEFAULT_MIN_PER_SHARD = 16


def build_plan(
    patterns: Mapping[str, Pattern],
    keys: Mapping[str, str],
    template_hashes: Mapping[str, dict[str, str]],
    engine: str,
    mode: str,
    manifest: Manifest,
    base: str | None,
) -> Plan:
    """What a run in `mode` rebuilds against `manifest`, the snapshot `base` it builds on.

    Every pattern in baseline mode ("full rebuild"); in optimized mode the ones whose build
    key changed, that are new, or that failed a check. A clean pattern keeps the checks the
    snapshot recorded for it.
    """
    dirty: dict[str, DirtyPattern] = {}
    recorded: dict[str, PatternChecks] = {}
    for name, pattern in patterns.items():
        entry = manifest.patterns.get(name)
        reason = "full rebuild" if mode == "baseline" else stale_reason(entry, keys[name])
        if reason:
            dirty[name] = DirtyPattern(reason=reason, spec=pattern.spec())
        else:
            assert entry is not None  # stale_reason returns "new" for a missing entry
            recorded[name] = PatternChecks(checks=entry["checks"], tests=entry.get("tests"))
    return Plan(
        engine=engine,
        mode=mode,
        library={name: LibraryEntry(kind=p.kind, key=keys[name]) for name, p in patterns.items()},
        templates=dict(template_hashes),
        dirty=dict(sorted(dirty.items())),
        recorded=recorded,
        removed=sorted(set(manifest.patterns) - set(patterns)),
        base=base,
    )


def plan_shards(
    patterns: Sequence[str], max_shards: int = 4, min_per_shard: int = DEFAULT_MIN_PER_SHARD
) -> list[Shard]:
    """Cut `patterns` into at most `max_shards` contiguous, sorted, near-equal shards.

    A shard gets at least `min_per_shard` patterns (unless there are fewer in total), because
    below that a separate task or process costs more than it saves. No patterns, no shards.
    A shard's name reads "shard 1/4: crc_000..crc_059 (60 patterns)".
    """
    if max_shards < 1 or min_per_shard < 1:
        raise ValueError("max_shards and min_per_shard must be at least 1")
    names = sorted(set(patterns))
    if not names:
        return []
    count = max(1, min(max_shards, len(names) // min_per_shard))
    size, extra = divmod(len(names), count)
    shards = []
    start = 0
    for index in range(count):
        chunk = names[start : start + size + (1 if index < extra else 0)]
        start += len(chunk)
        shards.append(
            Shard(
                index=index,
                name=f"shard {index + 1}/{count}: {chunk[0]}..{chunk[-1]} ({len(chunk)} patterns)",
                patterns=chunk,
            )
        )
    return shards

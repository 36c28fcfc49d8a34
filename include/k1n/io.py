"""Reading and writing files: YAML documents, and atomic replacement for results and codegen."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import yaml

from k1n.errors import FileProblem

TEMP_SUFFIX = ".tmp"
# Specs, settings files and profiles are a few KB; anything this large is not one.
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_YAML_NODES = 100_000

log = logging.getLogger(__name__)


def stage_file(
    path: Path, data: bytes, *, mode: int = 0o644, durable: bool = False, make_parents: bool = True
) -> Path:
    """A new temporary file beside `path` holding `data`, for `os.replace` onto `path`.

    Its name is fresh (`mkstemp`: created exclusively, so a link planted under a name we
    would use is never followed) and hidden with a `.tmp` end, so a writer that died half way
    leaves debris that globs skip and `remove_temp_debris` recognises. It is created
    owner-only and widened to `mode` only then. `durable` adds an fsync. `make_parents=False`
    leaves a missing folder an error (a user's output path is not ours to create).
    """
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as tmp:
            if mode != 0o600:
                os.fchmod(tmp.fileno(), mode)
            tmp.write(data)
            if durable:
                tmp.flush()
                os.fsync(tmp.fileno())
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return Path(tmp_name)


def write_bytes_atomic(
    path: Path, data: bytes, *, durable: bool = False, mode: int = 0o644, make_parents: bool = True
) -> None:
    """Replace `path` with `data` so a concurrent reader sees the old file or the new one.

    Through `stage_file`, then a rename: a symbolic link at `path` is replaced, not followed.
    `mode` 0o600 keeps a secret owner-only from the first byte.
    """
    staged = stage_file(path, data, mode=mode, durable=durable, make_parents=make_parents)
    try:
        os.replace(staged, path)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise


def private_dir(path: Path) -> Path:
    """`path` as a folder only this user can write, created (0700) if missing; `PermissionError`
    naming it if it is a link, not a folder, someone else's, or writable by others.

    Caches hold code that is loaded back (Jinja's marshalled bytecode, the generated library):
    on a shared machine a folder another user can write would let them choose that code.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise PermissionError(f"cache folder {path} is a link or not a folder: refusing to use it")
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionError(
            f"cache folder {path} is someone else's or writable by others: refusing to load "
            "code from it (use a folder of your own, e.g. K1N_CACHE_DIR)"
        )
    return path


def read_text_file(path: Path, error: type[FileProblem], max_bytes: int = MAX_FILE_BYTES) -> str:
    """A regular file's UTF-8 text, at most `max_bytes`; anything else raises
    `error(path, problem)` on one line: a FIFO or a device (which would block or never end) is
    refused before it is opened, a larger file before it is read whole."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error(path, "file not found") from None
    except OSError as exc:
        raise error(path, f"cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(path, "is a directory, expected a file")
    if not stat.S_ISREG(info.st_mode):
        raise error(path, "not a regular file (a FIFO, socket or device?)")
    try:
        with path.open("rb") as stream:
            data = stream.read(max_bytes + 1)
    except OSError as exc:
        raise error(path, f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise error(path, f"larger than {max_bytes} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(path, f"not UTF-8 text (byte {exc.start}: {exc.reason})") from None


# libyaml's loader where it is installed (the pattern library is 600 files), else PyYAML's.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _BoundedLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """PyYAML's safe loader that refuses a document whose aliases would expand to more than
    `MAX_YAML_NODES` nodes ("billion laughs"): it is checked on the composed node graph, where
    an alias is one shared node, before anything walks the expanded data."""


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes in `node` with every alias expanded; memoized per node, so linear in the file."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = MAX_YAML_NODES + 1  # a node reached again while inside itself: a cycle
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(item, sizes) for item in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(
            _expanded_size(key, sizes) + _expanded_size(value, sizes) for key, value in node.value
        )
    else:
        size = 1
    sizes[id(node)] = min(size, MAX_YAML_NODES + 1)
    return sizes[id(node)]


def load_yaml_text(text: str) -> Any:
    """Safe-load one YAML document; `ValueError` if its aliases expand beyond the limit."""
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_YAML_NODES:
            raise ValueError(
                f"its aliases expand to more than {MAX_YAML_NODES} nodes (a YAML bomb?)"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


class ParsedYamlCache:
    """YAML documents parsed before, by the sha256 of their text, kept in one JSON file.

    PyYAML's constructor is pure Python: ~1 ms per pattern file, most of reading a 600-file
    library. With this, an unchanged text is one hash and one lookup; what JSON cannot hold
    exactly (dates, non-string keys, NaN) is parsed every time. `save` keeps the documents read
    since it was opened, so the file follows one library and does not grow; a damaged file or
    one of another version is ignored and replaced.
    """

    # Part of the file, not of each key: a new PyYAML or new bounds re-parse everything.
    VERSION = f"1 pyyaml {yaml.__version__} nodes {MAX_YAML_NODES}"

    def __init__(self, file: Path) -> None:
        self.file = file
        self._known = self._read()
        self._used: dict[str, Any] = {}

    def _read(self) -> dict[str, Any]:
        try:
            document = json.loads(self.file.read_bytes())
        except (OSError, ValueError):
            return {}
        if not isinstance(document, dict) or document.get("version") != self.VERSION:
            return {}
        documents = document.get("documents")
        return documents if isinstance(documents, dict) else {}

    def load(self, text: str) -> Any:
        """`load_yaml_text(text)`, from the file when this text was parsed before."""
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        data = self._known[digest] if digest in self._known else load_yaml_text(text)
        self._used[digest] = data
        return data

    def save(self) -> None:
        """Replace the file with the documents read since it was opened (best effort: a cache
        that cannot be written costs the next reader time, not correctness)."""
        keep = {
            digest: data
            for digest, data in self._used.items()
            if digest in self._known or _survives_json(data)
        }
        if keep.keys() == self._known.keys():
            return
        payload = json.dumps({"version": self.VERSION, "documents": keep}, separators=(",", ":"))
        try:
            write_bytes_atomic(self.file, payload.encode("utf-8"))
        except OSError as exc:
            log.warning("parsed YAML cache %s not written: %s", self.file, exc)


def _survives_json(data: Any) -> bool:
    try:
        return json.loads(json.dumps(data, allow_nan=False)) == data
    except (TypeError, ValueError):
        return False


def read_yaml(path: Path, error: type[FileProblem], cache: ParsedYamlCache | None = None) -> Any:
    """Load a YAML file; a missing, unreadable, oversized, non-UTF-8 or malformed file, or one
    whose aliases expand too far, raises `error(path, problem)`. `cache`: parse a text only
    once (its checks ran when it was first parsed)."""
    text = read_text_file(path, error)
    try:
        return cache.load(text) if cache is not None else load_yaml_text(text)
    except yaml.YAMLError as exc:
        raise error(path, f"invalid YAML: {_describe_yaml_error(exc)}") from None
    except (ValueError, RecursionError) as exc:
        problem = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise error(path, f"invalid YAML: {problem}") from None


def _describe_yaml_error(exc: yaml.YAMLError) -> str:
    """One line: the problem and where (PyYAML's own text spans several lines)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).split("\n", 1)[0]
    problem = " ".join(str(problem).split())[:200]
    if mark is None:
        return problem
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"

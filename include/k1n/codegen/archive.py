"""Many small files as one object: a byte-reproducible gzipped tar.

Code generation moves thousands of small files between tasks and into its published snapshots;
as one archive that is one PUT and one GET instead of thousands. `pack` writes the same bytes
for the same files (sorted names, no times, owners or modes from the machine), so an archive's
hash identifies its content. `unpack` accepts only what `pack` writes: regular files with
relative names that stay inside the extraction folder.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from k1n.codegen.errors import CodegenError

# Fast compression: the archives are moved once or twice, and the CPU is shared with tasks.
COMPRESS_LEVEL = 1
FILE_MODE = 0o644
# A snapshot of the demo library unpacks to ~10 MB; a gzip bomb stops here, not at memory's end.
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024


def pack(files: Mapping[str, bytes]) -> bytes:
    """A gzipped tar of `files` (relative POSIX name -> content), byte for byte reproducible."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(files):
            _check_name(name)
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), FILE_MODE, 0
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=COMPRESS_LEVEL, mtime=0)


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    """`data` decompressed, refused once it would exceed `max_bytes` (a single gzip member:
    the only thing `pack` writes)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    raw = inflater.decompress(data, max_bytes + 1)
    if len(raw) > max_bytes or inflater.unconsumed_tail:
        raise CodegenError(f"not a code archive: it unpacks to more than {max_bytes} bytes")
    if not inflater.eof:
        raise CodegenError("not a readable code archive: it is truncated")
    return raw


def unpack(data: bytes, max_bytes: int = MAX_UNPACKED_BYTES) -> dict[str, bytes]:
    """The files of an archive `pack` wrote; anything else raises `CodegenError`."""
    try:
        raw = _gunzip(data, max_bytes)
        files: dict[str, bytes] = {}
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as archive:
            for member in archive:
                if not member.isreg():
                    raise CodegenError(f"archive member {member.name!r} is not a regular file")
                _check_name(member.name)
                stream = archive.extractfile(member)
                assert stream is not None  # a regular file always has a stream
                files[member.name] = stream.read()
    except (OSError, EOFError, zlib.error, tarfile.TarError) as exc:
        raise CodegenError(f"not a readable code archive: {exc}") from None
    return files


def write_tree(files: Mapping[str, bytes], root: Path) -> None:
    """Write `files` under the local folder `root` (created if missing)."""
    for name, data in files.items():
        target = root / _check_name(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def read_tree(root: Path, names: list[str]) -> dict[str, bytes]:
    """The content of `names` (relative to `root`)."""
    return {name: (root / _check_name(name)).read_bytes() for name in names}


def _check_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or name != path.as_posix():
        raise CodegenError(f"unsafe file name in a code archive: {name!r}")
    return path

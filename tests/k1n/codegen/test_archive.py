"""Code archives: reproducible, and `unpack` takes only what `pack` writes, within bounds."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from k1n.codegen import CodegenError, archive


def test_a_gzip_bomb_is_refused_before_it_fills_memory() -> None:
    bomb = archive.pack({"big.py": b"\0" * 4_000_000})
    assert len(bomb) < 20_000
    with pytest.raises(CodegenError, match="unpacks to more than 1000000 bytes"):
        archive.unpack(bomb, max_bytes=1_000_000)
    assert archive.unpack(bomb, max_bytes=5_000_000)["big.py"] == b"\0" * 4_000_000


def test_a_truncated_archive_is_one_error() -> None:
    data = archive.pack({"a.py": b"A = 1\n" * 1000})
    with pytest.raises(CodegenError, match="truncated"):
        archive.unpack(data[: len(data) // 2])


def _tar(add) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        add(tar)
    return gzip.compress(raw.getvalue())


def test_links_and_escaping_names_are_refused() -> None:
    def link(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("a.py")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)

    def escaping(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("../outside.py")
        tar.addfile(info, io.BytesIO(b""))

    with pytest.raises(CodegenError, match="is not a regular file"):
        archive.unpack(_tar(link))
    with pytest.raises(CodegenError, match="unsafe file name"):
        archive.unpack(_tar(escaping))

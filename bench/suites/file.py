"""file: reading a 1 GiB file from the page cache, against dd."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from harness import (Benchmark, Figure, Prepared, Run, at_end, cmake_target, info,
                     mem_available_kib, spindle_runs, warn)

SIZE = 1 << 30
BLOCK = 128 * 1024
CHUNK = 1 << 20

_made: list[Prepared] = []  # the file is made once per runner invocation


def _directory() -> str | None:
    """A directory on a file system with room for the file (not a small
    tmpfs such as /dev/shm): $TMPDIR, /var/tmp, /tmp."""
    for d in (os.environ.get("TMPDIR"), "/var/tmp", "/tmp"):
        if d and os.path.isdir(d) and os.access(d, os.W_OK):
            if shutil.disk_usage(d).free >= SIZE + SIZE // 2:
                return d
    return None


def _make() -> Prepared:
    avail = mem_available_kib()
    if avail is not None and avail * 1024 < 2 * SIZE:
        return Prepared(skip_reason="less than 2 GiB of memory available: the 1 GiB file "
                        "would not stay in the page cache")
    where = _directory()
    if where is None:
        return Prepared(skip_reason="no temporary directory with 1.5 GiB free")
    tmp = Path(tempfile.mkdtemp(prefix="spindle-bench-file-", dir=where))
    at_end(lambda: shutil.rmtree(tmp, ignore_errors=True))
    path = tmp / "data"
    info(f"writing {SIZE >> 20} MiB to {path} (deleted at the end)")
    chunk = bytes(range(256)) * (CHUNK // 256)
    try:
        with open(path, "wb") as f:
            for _ in range(SIZE // CHUNK):
                f.write(chunk)
        with open(path, "rb") as f:  # into the page cache
            while f.read(CHUNK * 8):
                pass
    except OSError as e:
        warn(f"cannot write {path}: {e}")
        return Prepared(skip_reason=f"cannot write the file: {e}")
    return Prepared(["--file", str(path)])


def the_file(ctx) -> Prepared:
    del ctx
    if not _made:
        _made.append(_make())
    return _made[0]


def runs(fibers: int) -> list[Run]:
    args = ["--fibers", str(fibers), "--block", str(BLOCK)]
    return [
        *spindle_runs(cmake_target("bench_spindle_file"), args, prepare=the_file,
                      note=f"{fibers} fiber{'s' if fibers > 1 else ''}, spindle::pread of "
                      f"{BLOCK // 1024} KiB (io_uring: an SQE; epoll: the blocking pool)"),
        Run("dd", cmake_target("bench_dd_file"), ["--block", str(BLOCK)], prepare=the_file,
            note=f"dd if=FILE of=/dev/null bs={BLOCK // 1024}K, its own report"),
    ]


BENCHMARK = Benchmark(
    name="file",
    order=100,
    description=(
        f"Reads a {SIZE >> 30} GiB file from the page cache (the runner writes it in a "
        "temporary directory on disk, $TMPDIR, /var/tmp or /tmp, reads it once, and deletes "
        f"it at the end) in {BLOCK // 1024} KiB blocks: `file-mbps` with one fiber, "
        "`file-mbps-16` with 16 fibers each reading its own contiguous slice. The peer is dd "
        "reading the same file with the same block size (one process, one thread), timed by "
        "its own report. MiB per second, the best of 3 after an untimed pass."
    ),
    figures=[
        Figure(name="file-mbps", title=f"Reading a 1 GiB cached file in {BLOCK // 1024} KiB "
               "blocks, one fiber", unit="MiB/s", lower_is_better=False, runs=runs(1)),
        Figure(name="file-mbps-16", title=f"Reading a 1 GiB cached file in {BLOCK // 1024} KiB "
               "blocks, 16 fibers", unit="MiB/s", lower_is_better=False, runs=runs(16)),
    ],
)

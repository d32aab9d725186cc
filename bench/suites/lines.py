"""lines: splitting a 1 GiB file of mixed line lengths into lines, against
std::getline and Go's bufio.Scanner."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from harness import (Benchmark, Figure, Prepared, Run, at_end, cmake_target, go_program, info,
                     mem_available_kib, spindle_runs, warn)

SIZE = 1 << 30
BLOCKS = 16  # distinct blocks of lines, written in a scrambled order

_made: list[Prepared] = []  # the file is made once per runner invocation


def _block(seed: int) -> bytes:
    """About 1 MiB of lines: 70 % of 0-60 bytes, 25 % of 60-400, 4.9 % of
    400-4,000 and 0.1 % of 4,000-40,000 (a deterministic LCG)."""
    state = seed * 2654435761 + 1
    alphabet = (b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789,.;:-" * 600)
    out = bytearray()
    while len(out) < (1 << 20):
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        r = (state >> 33) % 1000
        pick = state >> 11
        if r < 700:
            n = pick % 61
        elif r < 950:
            n = 60 + pick % 341
        elif r < 999:
            n = 400 + pick % 3601
        else:
            n = 4000 + pick % 36001
        start = pick % 1000
        out += alphabet[start:start + n] + b"\n"
    return bytes(out)


def _directory() -> str | None:
    """A directory on a file system with room for the file: $TMPDIR,
    /var/tmp, /tmp (not a small tmpfs)."""
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
    tmp = Path(tempfile.mkdtemp(prefix="spindle-bench-lines-", dir=where))
    at_end(lambda: shutil.rmtree(tmp, ignore_errors=True))
    path = tmp / "lines"
    info(f"writing {SIZE >> 20} MiB of lines to {path} (deleted at the end)")
    blocks = [_block(i) for i in range(BLOCKS)]
    counts = [(b.count(b"\n"), len(b) - b.count(b"\n")) for b in blocks]
    lines = content = written = 0
    i = 0
    try:
        with open(path, "wb") as f:
            while written < SIZE:
                k = (i * 7 + i // BLOCKS) % BLOCKS
                f.write(blocks[k])
                written += len(blocks[k])
                lines += counts[k][0]
                content += counts[k][1]
                i += 1
        with open(path, "rb") as f:  # into the page cache
            while f.read(8 << 20):
                pass
    except OSError as e:
        warn(f"cannot write {path}: {e}")
        return Prepared(skip_reason=f"cannot write the file: {e}")
    return Prepared(["--file", str(path), "--lines", str(lines), "--bytes", str(content)],
                    notes=[f"{lines:,} lines, {written / lines:.0f} bytes per line on average"])


def the_file(ctx) -> Prepared:
    del ctx
    if not _made:
        _made.append(_make())
    return _made[0]


BENCHMARK = Benchmark(
    name="lines",
    order=105,
    description=(
        f"Splits a {SIZE >> 30} GiB file into lines and counts them and their bytes (checked "
        "against the runner's counts). The runner writes the file once in a temporary "
        "directory on disk ($TMPDIR, /var/tmp or /tmp), reads it once so that it is in the "
        "page cache, and deletes it at the end. Line lengths are mixed: 70 % of 0-60 bytes, "
        "25 % of 60-400, 4.9 % of 400-4,000, 0.1 % of 4,000-40,000. spindle: "
        "`BufferedReader::read_line` over a `spindle::File` (64 KiB buffer); getline: "
        "`std::getline` on a `std::ifstream`; go: `bufio.Scanner` on an `os.File`. MiB of "
        "file per second, the best of 3 after an untimed pass, one thread."
    ),
    figures=[
        Figure(
            name="lines-mbps",
            title="read_line over a 1 GiB cached file of mixed line lengths",
            unit="MiB/s",
            lower_is_better=False,
            runs=[
                *spindle_runs(cmake_target("bench_spindle_lines"), [], prepare=the_file,
                              note="BufferedReader::read_line on a File: a memchr per line, "
                              "a view into the buffer (no copy)"),
                Run("getline", cmake_target("bench_getline_lines"), [], prepare=the_file,
                    note="std::getline(std::ifstream&, std::string&), one string reused"),
                Run("go", go_program("lines"), [], prepare=the_file,
                    note="bufio.Scanner (ScanLines, buffer up to 1 MiB), GOMAXPROCS=1",
                    env={"GOMAXPROCS": "1"}),
            ],
        ),
    ],
)

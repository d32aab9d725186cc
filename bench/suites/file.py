"""file: reading a 1 GiB file from the page cache, against dd."""

from __future__ import annotations

from harness import Benchmark, Figure, Prepared, Run, cmake_target, page_cached_file, spindle_runs

SIZE = 1 << 30
BLOCK = 128 * 1024
CHUNK = 1 << 20


def _write(f) -> Prepared:
    chunk = bytes(range(256)) * (CHUNK // 256)
    for _ in range(SIZE // CHUNK):
        f.write(chunk)
    return Prepared()


the_file = page_cached_file("file", SIZE, _write)


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

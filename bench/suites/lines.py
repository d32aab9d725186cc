"""lines: splitting a 1 GiB file of mixed line lengths into lines, against
std::getline and Go's bufio.Scanner."""

from __future__ import annotations

from harness import (Benchmark, Figure, Prepared, Run, cmake_target, go_program, page_cached_file,
                     spindle_runs)

SIZE = 1 << 30
BLOCKS = 16  # distinct blocks of lines, written in a scrambled order


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


def _write(f) -> Prepared:
    """The blocks in a scrambled order up to SIZE; the runs get the counts
    of lines and of their bytes (without the newlines) to check."""
    blocks = [_block(i) for i in range(BLOCKS)]
    counts = [(b.count(b"\n"), len(b) - b.count(b"\n")) for b in blocks]
    lines = content = written = 0
    i = 0
    while written < SIZE:
        k = (i * 7 + i // BLOCKS) % BLOCKS
        f.write(blocks[k])
        written += len(blocks[k])
        lines += counts[k][0]
        content += counts[k][1]
        i += 1
    return Prepared(["--lines", str(lines), "--bytes", str(content)],
                    notes=[f"{lines:,} lines, {written / lines:.0f} bytes per line on average"])


the_file = page_cached_file("lines", SIZE, _write, what=" of lines")


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

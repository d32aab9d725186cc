"""pipe: groups of a reader and a writer on one pipe each, small and large
messages. socketpair.py measures the same on socketpairs."""

from harness import Benchmark, Figure, Run, cmake_target, go_program, spindle_runs

GROUPS = 10
# (message size, messages per group, figure suffix, unit, JSON member)
SHAPES = [
    (64, 20_000, "msgs", "msgs/s", "value"),
    (64 * 1024, 500, "mibs", "MiB/s", "mib_s"),
]


def runs(kind: str, size: int, messages: int, field: str) -> list[Run]:
    args = ["--kind", kind, "--groups", str(GROUPS), "--size", str(size),
            "--messages", str(messages)]
    return [
        *spindle_runs(cmake_target("bench_spindle_pipe"), args, field=field,
                      note="spindle::read_some + spindle::write, fibers on one runtime"),
        Run("std_thread", cmake_target("bench_thread_pipe"), args, field=field,
            note=f"blocking read(2) / write(2), {2 * GROUPS} threads"),
        Run("go", go_program("pipe"), args, env={"GOMAXPROCS": "1"}, field=field,
            note=("os.Pipe" if kind == "pipe" else "syscall.Socketpair as net.Conn")
            + ", GOMAXPROCS=1"),
        Run("asio", cmake_target("bench_asio_pipe"), args, field=field,
            note="posix::stream_descriptor, async_read_some + async_write, one thread"),
    ]


def stream_benchmark(kind: str, order: int) -> Benchmark:
    what = "pipe" if kind == "pipe" else "AF_UNIX stream socketpair"
    return Benchmark(
        name=kind,
        order=order,
        description=(
            f"{GROUPS} groups, each a reader and a writer on one {what}: the writer writes "
            "N messages (each completely), the reader reads with a buffer of one message's "
            "size until it has them all (checking the bytes). "
            f"`{kind}-msgs`: {SHAPES[0][0]} B messages, {SHAPES[0][1]:,} per group, messages "
            f"per second; `{kind}-mibs`: {SHAPES[1][0] // 1024} KiB messages, {SHAPES[1][1]} "
            "per group, MiB per second. The best of 3 repetitions after a warm-up. Fibers, "
            "goroutines and Asio's handlers run on one thread; std::thread runs a thread per "
            "reader and writer on every core. Shape: bench/pipe/pipe_shape.hpp."
        ),
        figures=[
            Figure(
                name=f"{kind}-{suffix}",
                title=f"{GROUPS} readers and writers on {what}s, {size:,} B messages",
                unit=unit,
                lower_is_better=False,
                runs=runs(kind, size, messages, field),
            )
            for size, messages, suffix, unit, field in SHAPES
        ],
    )


BENCHMARK = stream_benchmark("pipe", 80)

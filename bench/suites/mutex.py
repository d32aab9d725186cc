"""mutex: groups of fibers contending for one mutex each, with CPU work or a
small file write under the lock."""

from harness import Benchmark, Figure, Run, cmake_target, go_program, spindle_runs

GROUPS, WORKERS, CPU_OPS, IO_OPS = 10, 10, 2_000, 200


def runs(mode: str, ops: int) -> list[Run]:
    args = ["--mode", mode, "--groups", str(GROUPS), "--workers", str(WORKERS), "--ops", str(ops)]
    io = mode == "io"
    return [
        *spindle_runs(cmake_target("bench_spindle_mutex"), args,
                      note="spindle::Mutex" + (", spindle::write (on io_uring an SQE: the fiber "
                                               "suspends holding the lock)" if io else "")),
        Run("std_thread", cmake_target("bench_thread_mutex"), args,
            note=f"std::mutex, {GROUPS * WORKERS} threads" + (", write(2)" if io else "")),
        Run("go", go_program("mutex"), args, env={"GOMAXPROCS": "1"},
            note="sync.Mutex, GOMAXPROCS=1" + (", (*os.File).Write" if io else "")),
        Run("boost_fiber", cmake_target("bench_boost_fiber_mutex"), args,
            note="boost::fibers::mutex, one thread" +
            (", write(2) (blocks the thread: Boost.Fiber has no async I/O)" if io else "")),
    ]


BENCHMARK = Benchmark(
    name="mutex",
    order=60,
    description=(
        f"{GROUPS} groups, each with one mutex and {WORKERS} workers that lock it repeatedly: "
        f"mutex-cpu-ops does {CPU_OPS:,} operations per worker of 100 dependent 64-bit LCG steps "
        f"under the lock; mutex-io-ops does {IO_OPS} per worker of one 64-byte write to the "
        "group's file (O_APPEND, in $TMPDIR or /tmp) under the lock. The figure is operations "
        "per second, the best of 3 repetitions after a warm-up; states and file sizes are "
        "checked. Fibers and goroutines run on one thread; std::thread runs one thread per "
        "worker on every core."
    ),
    figures=[
        Figure(
            name="mutex-cpu-ops",
            title=f"{GROUPS} groups x {WORKERS} workers on one mutex, CPU work under the lock: "
                  "operations per second",
            unit="ops/s",
            lower_is_better=False,
            runs=runs("cpu", CPU_OPS),
        ),
        Figure(
            name="mutex-io-ops",
            title=f"{GROUPS} groups x {WORKERS} workers on one mutex, a small file write under "
                  "the lock: operations per second",
            unit="ops/s",
            lower_is_better=False,
            runs=runs("io", IO_OPS),
        ),
    ],
)

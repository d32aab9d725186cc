"""spawn: the cost of a fiber, in time (spawn + join) and in memory."""

from harness import (Benchmark, Figure, Run, all_of, cargo_program, cmake_target, fit_count,
                     go_program, max_map_count, spindle_runs)

COUNT = 1_000_000
BATCH = 1_000

# spindle's guarded stacks are two kernel mappings each.
MAP_COUNT = all_of(
    max_map_count(
        2_100_000,
        fallback_args=["--no-stack-guard"],
        fallback_note="vm.max_map_count could not be raised: spindle ran with "
        "Options{.stack_guard=false}",
    ),
)

BENCHMARK = Benchmark(
    name="spawn",
    order=20,
    description=(
        "spawn-ns: 1,000,000 fibers are spawned and joined in batches of 1,000 (spawn 1,000, "
        "join them); the figure is the time per fiber, the best of 3 repetitions after a "
        "warm-up. spawn-rss: 1,000,000 fibers alive at once, each blocked until all are "
        "spawned; the figure is (peak RSS - RSS before spawning) / count. Everything runs "
        "on one thread, except std::thread."
    ),
    figures=[
        Figure(
            name="spawn-ns",
            title=f"Spawn + join of {COUNT:,} fibers in batches of {BATCH:,}: time per fiber",
            unit="ns/fiber",
            lower_is_better=True,
            runs=[
                *spindle_runs(cmake_target("bench_spindle_spawn"), ["--mode", "ns"],
                              note="spindle::spin + Fiber::join, 128 KiB pooled stacks"),
                Run("boost_fiber", cmake_target("bench_boost_fiber_spawn"), ["--mode", "ns"],
                    note="boost::fibers::fiber with pooled_fixedsize_stack (128 KiB), join()"),
                Run("go", go_program("spawn"), ["--mode", "ns"], env={"GOMAXPROCS": "1"},
                    note="goroutines and a sync.WaitGroup per batch, GOMAXPROCS=1"),
                Run("tokio", cargo_program("spawn"),
                    note="tokio::spawn + JoinHandle.await, current_thread runtime"),
                Run("std_thread", cmake_target("bench_thread_spawn"),
                    ["--count", "10000", "--batch", str(BATCH)],
                    note="std::thread + join: 10,000 threads only, same batches"),
            ],
        ),
        Figure(
            name="spawn-rss",
            title=f"{COUNT:,} fibers alive at once: memory per fiber",
            unit="KiB/fiber",
            lower_is_better=True,
            runs=[
                Run("spindle", cmake_target("bench_spindle_spawn"), ["--mode", "rss"],
                    env={"SPINDLE_BACKEND": "io_uring"}, timeout=600,
                    note="parked in spindle::suspend(); 128 KiB stacks (virtual) with a guard page",
                    prepare=all_of(fit_count([COUNT, 100_000], 6, "fibers"), MAP_COUNT)),
                Run("boost_fiber", cmake_target("bench_boost_fiber_spawn"), ["--mode", "rss"],
                    timeout=600,
                    note="waiting on a boost::fibers::condition_variable; pooled_fixedsize_stack "
                    "of 128 KiB (Boost's default), no guard page",
                    prepare=fit_count([COUNT, 100_000], 13, "fibers")),
                Run("go", go_program("spawn"), ["--mode", "rss"], env={"GOMAXPROCS": "1"},
                    timeout=600, note="goroutines blocked on a channel receive, GOMAXPROCS=1",
                    prepare=fit_count([COUNT, 100_000], 4, "goroutines")),
            ],
        ),
    ],
)

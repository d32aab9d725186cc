"""switch: two fibers (tasks, goroutines) yielding to each other."""

from harness import Benchmark, Figure, Run, cargo_program, cmake_target, go_program, spindle_runs

BENCHMARK = Benchmark(
    name="switch",
    order=10,
    description=(
        "Two fibers yield to each other 10,000,000 times; the figure is the time of one "
        "switch, the best of 5 repetitions after a warm-up. Everything runs on one thread."
    ),
    figures=[
        Figure(
            name="switch-ns",
            title="Two fibers yielding to each other: time per yield",
            unit="ns/switch",
            lower_is_better=True,
            runs=[
                *spindle_runs(cmake_target("bench_spindle_switch"), [],
                              note="spindle::yield()"),
                Run("boost_context", cmake_target("bench_boost_context_switch"),
                    note="boost::context::fiber resume ping-pong, ns per resume"),
                Run("boost_fiber", cmake_target("bench_boost_fiber_switch"),
                    note="boost::this_fiber::yield(), round-robin scheduler"),
                Run("go", go_program("switch"), env={"GOMAXPROCS": "1"},
                    note="runtime.Gosched(), GOMAXPROCS=1"),
                Run("tokio", cargo_program("switch"),
                    note="tokio::task::yield_now().await, current_thread runtime"),
            ],
        ),
    ],
)

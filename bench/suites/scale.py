"""scale: several workers: fork/join spawn trees and a yield-heavy load."""

from harness import Benchmark, Figure, Run, cmake_target, go_program, spindle_runs

WORKERS = "2"


def figure(mode: str, name: str, title: str, spindle_note: str, go_note: str,
           boost_note: str) -> Figure:
    return Figure(
        name=name,
        title=title,
        unit="ops/s",
        lower_is_better=False,
        runs=[
            *spindle_runs(cmake_target("bench_spindle_scale"),
                          ["--mode", mode, "--workers", WORKERS], note=spindle_note),
            Run("go", go_program("scale"), ["-mode", mode, "-procs", WORKERS],
                env={"GOMAXPROCS": WORKERS}, note=go_note),
            Run("boost_fiber", cmake_target("bench_boost_fiber_scale"),
                ["--mode", mode, "--threads", WORKERS], note=boost_note),
        ],
    )


BENCHMARK = Benchmark(
    name="scale",
    order=45,
    description=(
        "Two workers (Go: GOMAXPROCS=2; Boost.Fiber: two threads with its work_stealing "
        "algorithm). scale-forkjoin-ops: binary trees of depth 12, each node spawning one "
        "child for one subtree, computing the other itself and joining the child; 50 trees, "
        "fibers spawned per second. scale-yield-ops: 64 fibers spawned from the main fiber "
        "each yield 20,000 times; yields per second. Best of 3 after a warm-up. spindle and "
        "Go also measure one worker in the same run; the footnotes give that figure and the "
        "speedup."
    ),
    figures=[
        figure("forkjoin", "scale-forkjoin-ops",
               "Fork/join spawn trees on two workers: fibers spawned and joined per second",
               "Options::workers = 2; never-run fibers are stolen by the idle worker",
               "goroutines, a channel per join, GOMAXPROCS=2",
               "boost::fibers::fiber + join, work_stealing on 2 threads"),
        figure("yield", "scale-yield-ops",
               "Yield-heavy load on two workers: yields per second",
               "Options::workers = 2; spindle::yield()",
               "runtime.Gosched(), GOMAXPROCS=2",
               "boost::this_fiber::yield(), work_stealing on 2 threads"),
    ],
)

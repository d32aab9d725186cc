"""channel: unbuffered channel ping-pong between two fibers of one thread."""

from harness import Benchmark, Figure, Run, cargo_program, cmake_target, go_program, spindle_runs

BENCHMARK = Benchmark(
    name="channel",
    order=40,
    description=(
        "Two fibers (goroutines, tasks) of one thread ping-pong an integer over two unbuffered "
        "channels, 1,000,000 round trips; the figure is the time of one round trip (two "
        "hand-offs, two switches), the best of 5 repetitions after a warm-up. Every reply is "
        "checked."
    ),
    figures=[
        Figure(
            name="channel-rtt-ns",
            title="Unbuffered channel ping-pong, same thread: time per round trip",
            unit="ns/round trip",
            lower_is_better=True,
            runs=[
                *spindle_runs(cmake_target("bench_spindle_channel"), [],
                              note="spindle::Channel<uint64_t> (unbuffered), two fibers"),
                Run("go", go_program("channel"), env={"GOMAXPROCS": "1"},
                    note="unbuffered chan, GOMAXPROCS=1"),
                Run("boost_fiber", cmake_target("bench_boost_fiber_channel"),
                    note="boost::fibers::unbuffered_channel, round-robin scheduler"),
                Run("tokio", cargo_program("channel"),
                    note="tokio::sync::mpsc of capacity 1 (Tokio has no unbuffered channel), "
                    "current_thread runtime"),
            ],
        ),
    ],
)

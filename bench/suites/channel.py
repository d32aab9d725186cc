"""channel: unbuffered channel ping-pong between two fibers of one thread."""

from harness import Benchmark, Figure, Run, cargo_program, cmake_target, go_program, spindle_runs

# Cross-worker round trips take microseconds (two threads must both be on a
# core): fewer of them.
XTRIPS = 100_000

BENCHMARK = Benchmark(
    name="channel",
    order=40,
    description=(
        "Two fibers (goroutines, tasks) of one thread ping-pong an integer over two unbuffered "
        "channels, 1,000,000 round trips; the figure is the time of one round trip (two "
        "hand-offs, two switches), the best of 5 repetitions after a warm-up. Every reply is "
        "checked. channel-xworker-rtt-ns: the same with two workers (Go: GOMAXPROCS=2), the "
        "echo fiber on the second worker, 100,000 round trips."
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
        Figure(
            name="channel-xworker-rtt-ns",
            title="Unbuffered channel ping-pong across two workers: time per round trip",
            unit="ns/round trip",
            lower_is_better=True,
            runs=[
                *spindle_runs(cmake_target("bench_spindle_channel"),
                              ["--workers", "2", "--trips", str(XTRIPS)],
                              note="Options::workers = 2, the echo fiber on worker 1 "
                              "(spin_on): every hand-off wakes a fiber of the other worker"),
                Run("go", go_program("channel"), ["-procs", "2", "-trips", str(XTRIPS)],
                    env={"GOMAXPROCS": "2"},
                    note="unbuffered chan, GOMAXPROCS=2 (Go places the goroutines)"),
            ],
        ),
    ],
)

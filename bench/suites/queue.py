"""queue: groups of producers and consumers on one bounded queue each."""

from harness import Benchmark, Figure, Run, cmake_target, go_program, spindle_runs

GROUPS, PRODUCERS, CONSUMERS, MESSAGES, CAPACITY = 10, 10, 10, 10_000, 128
ARGS = ["--groups", str(GROUPS), "--producers", str(PRODUCERS), "--consumers", str(CONSUMERS),
        "--messages", str(MESSAGES), "--capacity", str(CAPACITY)]

BENCHMARK = Benchmark(
    name="queue",
    order=50,
    description=(
        f"{GROUPS} groups, each with one queue of capacity {CAPACITY}, {PRODUCERS} producers "
        f"pushing {MESSAGES:,} integers each and {CONSUMERS} consumers popping until the queue "
        f"is closed ({GROUPS * PRODUCERS * MESSAGES:,} messages in all); the figure is messages "
        "per second, the best of 3 repetitions after a warm-up. The sums are checked. Fibers "
        "and goroutines run on one thread; std::thread runs one thread per producer and "
        "consumer on every core. queue-xworker-msgs: the same on two workers (GOMAXPROCS=2)."
    ),
    figures=[
        Figure(
            name="queue-msgs",
            title=f"{GROUPS} groups x ({PRODUCERS} producers, {CONSUMERS} consumers) on a bounded "
                  "queue: messages per second",
            unit="msgs/s",
            lower_is_better=False,
            runs=[
                *spindle_runs(cmake_target("bench_spindle_queue"), ARGS,
                              note="spindle::Queue<uint64_t>(128), fibers on one runtime"),
                Run("std_thread", cmake_target("bench_thread_queue"), ARGS,
                    note="std::mutex + two std::condition_variable around a std::deque, "
                    f"{GROUPS * (PRODUCERS + CONSUMERS)} threads"),
                Run("go", go_program("queue"), ARGS, env={"GOMAXPROCS": "1"},
                    note="buffered chan of 128, GOMAXPROCS=1"),
                Run("boost_fiber", cmake_target("bench_boost_fiber_queue"), ARGS,
                    note="boost::fibers::buffered_channel(128) (holds 127), one thread"),
            ],
        ),
        Figure(
            name="queue-xworker-msgs",
            title="The same on two workers: messages per second",
            unit="msgs/s",
            lower_is_better=False,
            runs=[
                *spindle_runs(cmake_target("bench_spindle_queue"), [*ARGS, "--workers", "2"],
                              note="Options::workers = 2: the fibers are spawned by the main "
                              "fiber and spread by stealing"),
                Run("go", go_program("queue"), [*ARGS, "-procs", "2"],
                    env={"GOMAXPROCS": "2"}, note="buffered chan of 128, GOMAXPROCS=2"),
            ],
        ),
    ],
)

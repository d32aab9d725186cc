"""sidecar: the same spindle programs with and without Options::sidecar
(SPINDLE_SIDECAR=1), on both backends: what the hand-off to a helper thread
costs or gains."""

from harness import Benchmark, Figure, Run, cmake_target

PIPE_ARGS = ["--kind", "pipe", "--groups", "10", "--size", "64", "--messages", "20000"]
NOPS = 1_000_000
XTRIPS = 100_000


def modes(program, args: list[str], field: str = "value", uring_only: bool = False,
          note: str = "") -> list[Run]:
    backends = [("spindle", "io_uring")] if uring_only else [
        ("spindle", "io_uring"), ("spindle_epoll", "epoll")]
    runs = []
    for key, backend in backends:
        for sidecar in ("0", "1"):
            runs.append(Run(key + ("_sidecar" if sidecar == "1" else ""), program, args,
                            {"SPINDLE_BACKEND": backend, "SPINDLE_SIDECAR": sidecar},
                            field=field, note=note))
    return runs


BENCHMARK = Benchmark(
    name="sidecar",
    order=95,
    description=(
        "Options::sidecar against the normal mode, the same program run with "
        "SPINDLE_SIDECAR=0 and =1: with a sidecar, a helper thread per worker makes the "
        "blocking kernel calls (io_uring: every io_uring_enter; epoll: a ppoll on the epoll "
        "descriptor before a non-blocking epoll_wait) and the worker sleeps on a futex. "
        "`sidecar-pipe-msgs`: bench/pipe's 10 groups of a reader and a writer, 64 B messages. "
        "`sidecar-nop-ops` / `-64`: bench/nop's NOP round trips, 1 and 64 fibers (io_uring "
        "only). `sidecar-xworker-rtt-ns`: bench/channel's ping-pong across two workers, where "
        "each hand-off parks and wakes a worker. The best of 3 (5 for the channel)."
    ),
    figures=[
        Figure(name="sidecar-pipe-msgs", title="10 pipe readers and writers, 64 B messages",
               unit="msgs/s", lower_is_better=False,
               runs=modes(cmake_target("bench_spindle_pipe"), PIPE_ARGS,
                          note="bench/pipe's spindle program")),
        Figure(name="sidecar-nop-ops", title="io_uring NOP round trips, one at a time",
               unit="ops/s", lower_is_better=False,
               runs=modes(cmake_target("bench_spindle_nop"), ["--ops", str(NOPS), "--fibers", "1"],
                          uring_only=True, note="bench/nop's spindle program")),
        Figure(name="sidecar-nop-ops-64", title="io_uring NOP round trips, 64 in flight",
               unit="ops/s", lower_is_better=False,
               runs=modes(cmake_target("bench_spindle_nop"),
                          ["--ops", str(NOPS), "--fibers", "64"], uring_only=True,
                          note="bench/nop's spindle program")),
        Figure(name="sidecar-xworker-rtt-ns",
               title="Channel ping-pong across two workers: time per round trip",
               unit="ns/round trip", lower_is_better=True,
               runs=modes(cmake_target("bench_spindle_channel"),
                          ["--workers", "2", "--trips", str(XTRIPS)],
                          note="bench/channel's spindle program, Options::workers = 2")),
    ],
)

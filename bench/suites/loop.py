"""loop: the callback event loop (spindle::Loop) against libev and libuv:
dispatch cost per readiness event, and timer insert + cancel."""

from __future__ import annotations

import resource

from harness import Benchmark, Figure, Prepared, Run, cmake_target, spindle_runs, warn

FDS = 10_000  # watched socketpairs
ACTIVE = 100  # written per round
ROUNDS = 2_000  # timed rounds per repetition
WARMUP = 300  # untimed rounds first
REPS = 5
TIMERS = 1_000_000


_fitted: list[Prepared] = []  # decided once per runner invocation


def fit_socketpairs(ctx) -> Prepared:
    """Passes --fds: FDS when RLIMIT_NOFILE allows it (the programs raise the
    soft limit to the hard one, and the hard one too when privileged), else
    the largest multiple of 100 that fits the hard limit, with a footnote.
    Every run of the figure gets the same count."""
    del ctx
    if not _fitted:
        _fitted.append(_fit_socketpairs())
    return _fitted[0]


def _fit_socketpairs() -> Prepared:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * FDS + 64  # what bench/loop/loop_work.h asks for
    if hard == resource.RLIM_INFINITY or hard >= needed:
        return Prepared(["--fds", str(FDS)])
    try:
        # Inherited by the programs; only possible with CAP_SYS_RESOURCE.
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
        return Prepared(["--fds", str(FDS)])
    except (ValueError, OSError):
        pass
    fds = (hard - 64) // 2 // 100 * 100
    if fds < ACTIVE:
        return Prepared(skip_reason=f"RLIMIT_NOFILE hard limit {hard} is too low")
    warn(f"RLIMIT_NOFILE hard limit is {hard} (not raisable here): {fds:,} socketpairs "
         f"instead of {FDS:,}")
    return Prepared(["--fds", str(fds)],
                    [f"{fds:,} socketpairs instead of {FDS:,}: the RLIMIT_NOFILE hard limit is "
                     f"{hard:,} and could not be raised"])


DISPATCH_ARGS = ["--mode", "dispatch", "--active", str(ACTIVE), "--rounds", str(ROUNDS),
                 "--warmup", str(WARMUP), "--reps", str(REPS)]
TIMER_ARGS = ["--mode", "timers", "--timers", str(TIMERS), "--reps", str(REPS)]

BENCHMARK = Benchmark(
    name="loop",
    order=30,
    description=(
        f"loop-dispatch-ns: {FDS:,} socketpairs (AF_UNIX stream, non-blocking) are watched for "
        "reading, level-triggered, each with its own callback. A round writes one byte into "
        f"the peer ends of {ACTIVE} distinct socketpairs (pseudo-random, the same sequence for "
        "every loop), then runs loop turns until the loop has called the "
        f"{ACTIVE} read callbacks, each of which reads its byte back. The figure is the "
        f"whole time of {ROUNDS:,} rounds (writes, turns, callbacks, reads: nothing but the "
        f"setup is left out) / ({ROUNDS:,} × {ACTIVE}), the best of {REPS} repetitions after "
        f"{WARMUP} untimed rounds. loop-timers-ns: {TIMERS:,} one-shot timers with "
        "pseudo-random delays between 1 and 2 seconds are set, then cancelled in the order "
        "they were set; the figure is the time of both passes / "
        f"{TIMERS:,} (one insert + one cancel), the best of {REPS} after an untimed pass. "
        "libev runs on its epoll backend (EVBACKEND_EPOLL), libuv waits through epoll. "
        "Everything runs on one thread; the three programs share bench/loop/loop_work.h."
    ),
    figures=[
        Figure(
            name="loop-dispatch-ns",
            title=f"{FDS:,} watched socketpairs, {ACTIVE} active per round: time per "
            "dispatched event",
            unit="ns/event",
            lower_is_better=True,
            runs=[
                *spindle_runs(cmake_target("bench_spindle_loop"), DISPATCH_ARGS,
                              note="spindle::Loop::watch (level-triggered read callback), "
                              "Loop::run_once()",
                              prepare=fit_socketpairs),
                Run("libev", cmake_target("bench_libev_loop"), DISPATCH_ARGS,
                    prepare=fit_socketpairs),
                Run("libuv", cmake_target("bench_libuv_loop"), DISPATCH_ARGS,
                    prepare=fit_socketpairs),
            ],
        ),
        Figure(
            name="loop-timers-ns",
            title=f"{TIMERS:,} timers set, then cancelled: time per insert + cancel",
            unit="ns/timer",
            lower_is_better=True,
            runs=[
                *spindle_runs(cmake_target("bench_spindle_loop"), TIMER_ARGS,
                              note="spindle::Loop::after (relative, nanoseconds) + Loop::cancel"),
                Run("libev", cmake_target("bench_libev_loop"), TIMER_ARGS),
                Run("libuv", cmake_target("bench_libuv_loop"), TIMER_ARGS),
            ],
        ),
    ],
)

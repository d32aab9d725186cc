"""nop: io_uring NOP round trips through fibers against a bare liburing
loop in C (the ceiling)."""

from harness import Benchmark, Figure, Run, cmake_target

OPS = 1_000_000


def runs(width: int) -> list[Run]:
    return [
        Run("spindle", cmake_target("bench_spindle_nop"),
            ["--ops", str(OPS), "--fibers", str(width)], {"SPINDLE_BACKEND": "io_uring"},
            note=f"{width} fiber{'s' if width > 1 else ''} calling spindle::nop()"),
        Run("c_uring", cmake_target("bench_c_uring_nop"), ["--ops", str(OPS), "--batch", str(width)],
            note=f"liburing, {width} NOP SQE{'s' if width > 1 else ''} per io_uring_submit_and_wait, "
            "SINGLE_ISSUER | DEFER_TASKRUN"),
    ]


BENCHMARK = Benchmark(
    name="nop",
    order=90,
    description=(
        f"{OPS:,} io_uring NOPs, each a round trip through the kernel. spindle: fibers "
        "calling spindle::nop() (an SQE; the fiber suspends; the scheduler submits, reaps and "
        "resumes it); `nop-ops`: one fiber, `nop-ops-64`: 64 fibers (their SQEs go in one "
        "submission). The peer is the ceiling: a bare liburing loop in C submitting the same "
        "number of NOPs per io_uring_submit_and_wait. Round trips per second, the best of 3 "
        "after a warm-up. io_uring only."
    ),
    figures=[
        Figure(name="nop-ops", title="io_uring NOP round trips, one at a time", unit="ops/s",
               lower_is_better=False, runs=runs(1)),
        Figure(name="nop-ops-64", title="io_uring NOP round trips, 64 in flight", unit="ops/s",
               lower_is_better=False, runs=runs(64)),
    ],
)

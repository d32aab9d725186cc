"""echo: a TCP echo server under the load of one C client
(bench/echo/echo_client.c), the same client for every server: on one worker
(the server on CPU 0, the client on CPU 1) and on two workers (server and
client share both CPUs)."""

from harness import Benchmark, Figure, Run, cargo_program, cmake_target, go_program

SIZE, WARMUP, SECONDS, WINDOWS = 64, 0.5, 4.0, 8
ROUNDS = 3  # interleaved runs of every server; each figure is the median
CONNS = (100, 1_000)
CLIENT = cmake_target("bench_echo_client")
COMMON = ["--size", str(SIZE), "--warmup", str(WARMUP), "--seconds", str(SECONDS),
          "--windows", str(WINDOWS), "--realtime", "1"]
# One worker: pinned apart; the client polls (never sleeps), so that its
# idle share says how much faster than the server it is.
ONE_WORKER = [*COMMON, "--server-cpu", "0", "--client-cpu", "1", "--spin", "1"]
# Two workers: nothing pinned, the client blocks when it has nothing to do
# (a polling client would take a core from the server).
TWO_WORKERS = [*COMMON, "--server-cpu", "none", "--client-cpu", "none", "--spin", "0"]

NET_ECHO = cmake_target("bench_spindle_net_echo")

# The servers, one line each: result key, program, its arguments, the
# environment (the client passes it on to the server), a footnote.
SERVERS = [
    ("spindle", NET_ECHO, ["--workers", "1"],
     {"SPINDLE_BACKEND": "io_uring"}, "the net layer's API: TcpListener::accept_loop, a fiber "
     "per TcpStream doing read_some + write_all"),
    ("spindle_raw", cmake_target("bench_spindle_echo"), ["--workers", "1"],
     {"SPINDLE_BACKEND": "io_uring"}, "the same server on raw io operations: accept_loop on "
     "the fd, a fiber per connection doing nothrow recv + send; the high-level API's target "
     "is at most 5% below it"),
    ("spindle_epoll", NET_ECHO, ["--workers", "1"],
     {"SPINDLE_BACKEND": "epoll"}, None),
    ("c_epoll", cmake_target("bench_c_epoll_echo"), [], {},
     "hand-written C: one level-triggered epoll loop, recv + send per readable connection"),
    ("asio", cmake_target("bench_asio_echo"), [], {},
     "one io_context on one thread, async_read_some + async_write handlers"),
    ("go", go_program("echo"), [], {"GOMAXPROCS": "1"},
     "a goroutine per connection, net.Conn Read + Write, GOMAXPROCS=1"),
    ("tokio", cargo_program("echo"), [], {},
     "current_thread runtime, a task per connection, read + write_all"),
]

SERVERS_2W = [
    ("spindle", NET_ECHO, ["--workers", "2"], {"SPINDLE_BACKEND": "io_uring"},
     "the same server with Options::workers = 2: one listener, the connection fibers spread "
     "by work stealing"),
    ("spindle_spread", NET_ECHO, ["--workers", "2", "--place", "round-robin"],
     {"SPINDLE_BACKEND": "io_uring"}, "the same, each connection fiber started on the next "
     "worker in turn (spin_on)"),
    ("go", go_program("echo"), [], {"GOMAXPROCS": "2"},
     "a goroutine per connection, GOMAXPROCS=2"),
    ("tokio", cargo_program("echo"), ["--workers", "2"], {},
     "multi_thread runtime with 2 worker threads, a task per connection"),
    ("c_epoll", cmake_target("bench_c_epoll_echo"), [], {},
     "the single-threaded C epoll loop, for reference: one core's worth of server"),
]


def runs(servers: list, client_args: list[str], conns: int, field: str) -> list[Run]:
    args = ["--conns", str(conns), *client_args]
    return [Run(key, CLIENT, [*args, "--", program, *server_args], env, note, timeout=120,
                field=field)
            for key, program, server_args, env, note in servers]


def figure(name: str, title: str, unit: str, lower: bool, field: str, servers: list,
           client_args: list[str], conns: int) -> Figure:
    return Figure(name=name, title=title, unit=unit, lower_is_better=lower,
                  runs=runs(servers, client_args, conns, field), rounds=ROUNDS)


def figures(conns: int, suffix: str) -> list[Figure]:
    shapes = [
        ("echo-msgs", f"TCP echo, {conns:,} connections x {SIZE} B messages back to back: "
         "round trips per second", "msgs/s", False, "value"),
        ("echo-p99-us", f"TCP echo, {conns:,} connections: 99th percentile round-trip time",
         "µs", True, "p99_us"),
        ("echo-cpu-ns", f"TCP echo, {conns:,} connections: the server's CPU time (user + "
         "system) per round trip", "ns/msg", True, "server_cpu_ns_per_msg"),
        ("echo-user-ns", f"TCP echo, {conns:,} connections: the server's user-space CPU time "
         "per round trip (its own code; the rest of echo-cpu-ns is the kernel's, mostly TCP)",
         "ns/msg", True, "server_user_ns_per_msg"),
        ("echo-client-idle", f"TCP echo, {conns:,} connections: the share of the time the "
         "client found nothing to do (near 0: the client, not the server, set the rate)",
         "share", True, "client_idle"),
    ]
    return [figure(name + suffix, title, unit, lower, field, SERVERS, ONE_WORKER, conns)
            for name, title, unit, lower, field in shapes]


def figures_2w(conns: int, suffix: str) -> list[Figure]:
    shapes = [
        ("echo-2w-msgs", f"TCP echo on two workers, {conns:,} connections (the client shares "
         "the two CPUs with the server): round trips per second", "msgs/s", False, "value"),
        ("echo-2w-p99-us", f"TCP echo on two workers, {conns:,} connections: 99th percentile "
         "round-trip time", "µs", True, "p99_us"),
        ("echo-2w-cpu-ns", f"TCP echo on two workers, {conns:,} connections: the server's CPU "
         "time (all threads) per round trip", "ns/msg", True, "server_cpu_ns_per_msg"),
    ]
    return [figure(name + suffix, title, unit, lower, field, SERVERS_2W, TWO_WORKERS, conns)
            for name, title, unit, lower, field in shapes]


BENCHMARK = Benchmark(
    name="echo",
    order=110,
    description=(
        "A TCP echo server on 127.0.0.1 and one client program (bench/echo/echo_client.c: plain "
        "C, one thread, io_uring, never spindle) that opens the connections and on each sends a "
        f"{SIZE}-byte message, waits for its echo (checked byte for byte) and sends the next at "
        "once: one message in flight per connection. The client keeps a multishot receive with a "
        "provided-buffer ring armed on every connection and submits its sends (whose successful "
        "completions are skipped) in one io_uring_enter per turn, reading the clock once per "
        "turn. Client and server run under SCHED_RR (priority 1), so that other work on a shared "
        "machine waits instead of taking turns with them (the kernel still leaves it 5 % of "
        f"each second). After {WARMUP:g} s of warm-up the client counts for {SECONDS:g} s in "
        f"{WINDOWS} windows: round trips per second, the server's CPU time (user + system, all "
        "threads, from schedstat) per round trip and its split between user space and the kernel "
        "(from /proc/PID/stat, over the whole counted time), the round-trip times (p99); each is the "
        f"median over the windows, and each figure the median of {ROUNDS} runs of every server, "
        "interleaved (the footnotes list them). One worker (`echo-*`): the server on CPU 0, the "
        "client on CPU 1, polling (it never sleeps), and `echo-client-idle` is the share of its "
        "time in polls that found nothing: near 0, the client was the bottleneck. Two workers "
        "(`echo-2w-*`): nothing pinned, the client sleeps when idle and shares the two CPUs with "
        f"the server's threads. `-1000`: {CONNS[1]:,} connections instead of {CONNS[0]}. On "
        "loopback each side's send also runs the peer's TCP receive path on the sender's CPU, so "
        "the client's work per message is about that of the leanest server: the fastest servers "
        "run at the client's speed."
    ),
    figures=[*figures(CONNS[0], ""), *figures(CONNS[1], "-1000"),
             *figures_2w(CONNS[0], ""), *figures_2w(CONNS[1], "-1000")],
)

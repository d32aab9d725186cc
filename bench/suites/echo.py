"""echo: a TCP echo server on one worker under the load of one C client
(bench/echo/echo_client.c), the same client for every server."""

from harness import Benchmark, Figure, Run, cargo_program, cmake_target, go_program

SIZE, WARMUP, SECONDS = 64, 0.5, 2.0
CONNS = (100, 1_000)
CLIENT = cmake_target("bench_echo_client")

# The servers, one line each: result key, program, its arguments, the
# environment (the client passes it on to the server), a footnote.
SERVERS = [
    ("spindle", cmake_target("bench_spindle_net_echo"), ["--workers", "1"],
     {"SPINDLE_BACKEND": "io_uring"}, "the net layer's API: TcpListener::accept_loop, a fiber "
     "per TcpStream doing read_some + write_all"),
    ("spindle_raw", cmake_target("bench_spindle_echo"), ["--workers", "1"],
     {"SPINDLE_BACKEND": "io_uring"}, "the same server on raw io operations: accept_loop on "
     "the fd, a fiber per connection doing nothrow recv + send; the high-level API's target "
     "is at most 5% below it"),
    ("spindle_epoll", cmake_target("bench_spindle_net_echo"), ["--workers", "1"],
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


def runs(conns: int, field: str) -> list[Run]:
    client_args = ["--conns", str(conns), "--size", str(SIZE), "--warmup", str(WARMUP),
                   "--seconds", str(SECONDS), "--server-cpu", "0", "--client-cpu", "1"]
    return [Run(key, CLIENT, [*client_args, "--", program, *args], env, note, timeout=120,
                field=field)
            for key, program, args, env, note in SERVERS]


def figures(conns: int, suffix: str) -> list[Figure]:
    return [
        Figure(
            name=f"echo-msgs{suffix}",
            title=f"TCP echo, {conns:,} connections x {SIZE} B messages back to back: "
                  "round trips per second",
            unit="msgs/s",
            lower_is_better=False,
            runs=runs(conns, "value"),
        ),
        Figure(
            name=f"echo-p99-us{suffix}",
            title=f"TCP echo, {conns:,} connections: 99th percentile round-trip time",
            unit="µs",
            lower_is_better=True,
            runs=runs(conns, "p99_us"),
        ),
        Figure(
            name=f"echo-cpu-ns{suffix}",
            title=f"TCP echo, {conns:,} connections: the server's CPU time (user + system) per "
                  "round trip",
            unit="ns/msg",
            lower_is_better=True,
            runs=runs(conns, "server_cpu_ns_per_msg"),
        ),
    ]


BENCHMARK = Benchmark(
    name="echo",
    order=110,
    description=(
        "A TCP echo server on 127.0.0.1 with one worker thread, pinned to CPU 0; one client "
        "program (bench/echo/echo_client.c: plain C, one epoll thread, never spindle), pinned to "
        f"CPU 1, opens the connections and on each sends a {SIZE}-byte message, waits for its "
        "echo (checked byte for byte) and sends the next at once: one message in flight per "
        f"connection. After {WARMUP:g} s of warm-up it counts for {SECONDS:g} s the round trips "
        "(messages per second, the best of 4 windows of "
        f"{SECONDS / 4:g} s) and times each one (send to the last byte back) for the 99th "
        "percentile, and reads the server's CPU time (user + system, all threads) in each "
        "window: `echo-cpu-ns` is that per round trip (the best window), the server's efficiency, which a "
        "busy machine disturbs less than the rate. The same client runs every server, which "
        "it starts itself; the figures of a connection count come from one run. `echo-msgs`, "
        f"`echo-p99-us`, `echo-cpu-ns`: {CONNS[0]} connections; `-1000`: {CONNS[1]:,}. The "
        "client does as much work per message as the server (a send and a receive), so the "
        "fastest servers are limited by the client: compare them by `echo-cpu-ns`."
    ),
    figures=[*figures(CONNS[0], ""), *figures(CONNS[1], "-1000")],
)

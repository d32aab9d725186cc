"""socketpair: the pipe benchmark on AF_UNIX stream socketpairs."""

from suites.pipe import stream_benchmark

BENCHMARK = stream_benchmark("socketpair", 81)

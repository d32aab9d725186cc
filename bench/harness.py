"""The pieces a benchmark definition is made of, and the code that builds and
runs them. bench/run.py is the command line; bench/suites/*.py hold one
benchmark each. Python 3 standard library only.

A benchmark (``Benchmark``) has figures (``Figure``, e.g. ``switch-ns``), and a
figure has runs (``Run``): one per result key (``spindle``, ``go``, ...). A run
names a ``Program`` (a CMake target of this repository, a Go peer or a Tokio
peer), its arguments and its environment. Each program prints one JSON line,
``{"value": <number>, ...}``; the runner takes ``value`` and, when present,
``note`` (a footnote) and ``backend`` (checked against SPINDLE_BACKEND).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Callable, Optional

REPO = Path(__file__).resolve().parent.parent

# How each result key is shown in the tables, in table order.
LABELS = {
    "spindle": "spindle (io_uring)",
    "spindle_epoll": "spindle (epoll)",
    "spindle_sidecar": "spindle (io_uring, sidecar)",
    "spindle_epoll_sidecar": "spindle (epoll, sidecar)",
    "boost_context": "Boost.Context",
    "boost_fiber": "Boost.Fiber",
    "go": "Go",
    "tokio": "Tokio",
    "std_thread": "std::thread",
    "libev": "libev",
    "libuv": "libuv",
    "asio": "Boost.Asio",
    "c_epoll": "C epoll loop",
    "c_uring": "C liburing loop",
    "spindle_spread": "spindle, connections spread round-robin",
    "dd": "dd",
}


def warn(message: str) -> None:
    print(f"WARNING: {message}", file=sys.stderr, flush=True)


def info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Programs


@dataclasses.dataclass(frozen=True)
class Program:
    """Something to build before the runs that use it.

    kind "cmake": a target of the CMake build (--build-dir), binary at
    <build-dir>/bench/<name>. kind "go": the package bench/peers/go/<name>,
    built into build/bench/peers/go_<name>. kind "cargo": the binary <name>
    of the Cargo project bench/peers/tokio.
    """

    kind: str
    name: str

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}"


def cmake_target(name: str) -> Program:
    return Program("cmake", name)


def go_program(package: str) -> Program:
    return Program("go", package)


def cargo_program(binary: str) -> Program:
    return Program("cargo", binary)


@dataclasses.dataclass
class Context:
    """Where things are, for one invocation of the runner."""

    build_dir: Path  # the CMake build directory, e.g. build/release
    out_dir: Path  # build/bench: JSON, markdown, peers
    no_build: bool = False

    @property
    def peers_dir(self) -> Path:
        return self.out_dir / "peers"


def _find_go() -> Optional[str]:
    return shutil.which("go") or next(
        (p for p in ("/usr/lib/go/bin/go", "/usr/local/go/bin/go") if os.access(p, os.X_OK)), None
    )


def _find_cargo() -> Optional[str]:
    found = shutil.which("cargo")
    if found:
        return found
    home_cargo = Path.home() / ".cargo" / "bin" / "cargo"
    return str(home_cargo) if os.access(home_cargo, os.X_OK) else None


def _run_build(cmd: list[str], cwd: Path, env: Optional[dict] = None) -> tuple[bool, str]:
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    except OSError as e:
        return False, str(e)
    return proc.returncode == 0, proc.stdout


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


class Builder:
    """Builds programs once per runner invocation and remembers the outcome:
    a path to run, or the reason there is none."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.paths: dict[str, Path] = {}
        self.missing: dict[str, str] = {}

    def path(self, program: Program) -> Optional[Path]:
        return self.paths.get(program.id)

    def build(self, programs: list[Program]) -> None:
        todo: dict[str, list[Program]] = {}
        for p in programs:
            if p.id not in self.paths and p.id not in self.missing:
                todo.setdefault(p.kind, [])
                if p not in todo[p.kind]:
                    todo[p.kind].append(p)
        if todo.get("cmake"):
            self._build_cmake(todo["cmake"])
        if todo.get("go"):
            self._build_go(todo["go"])
        if todo.get("cargo"):
            self._build_cargo(todo["cargo"])

    def _found(self, p: Program, path: Path) -> None:
        if path.is_file() and os.access(path, os.X_OK):
            self.paths[p.id] = path
        else:
            self.missing[p.id] = f"{path} was not built"
            warn(f"{p.id}: {self.missing[p.id]}")

    def _fail(self, p: Program, reason: str, details: str = "") -> None:
        self.missing[p.id] = reason
        warn(f"{p.id}: {reason}" + (f":\n{_tail(details)}" if details else ""))

    def _build_cmake(self, programs: list[Program]) -> None:
        bdir = self.ctx.build_dir
        if not self.ctx.no_build:
            if not (bdir / "CMakeCache.txt").is_file():
                for p in programs:
                    self._fail(p, f"{bdir} is not a configured CMake build (cmake --preset release)")
                return
            cmake = shutil.which("cmake") or "cmake"
            names = [p.name for p in programs]
            info(f"building {', '.join(names)} in {bdir}")
            ok, out = _run_build([cmake, "--build", str(bdir), "--target", *names], REPO)
            if not ok:
                # One at a time, so that one broken program (or a peer left out
                # at configure time) does not take the others down with it.
                for p in programs:
                    ok1, out1 = _run_build([cmake, "--build", str(bdir), "--target", p.name], REPO)
                    if not ok1 and "unknown target" in out1:
                        self._fail(p, f"no CMake target {p.name} (its dependencies were not "
                                   "found when the build was configured?)")
                    elif not ok1:
                        self._fail(p, f"cmake --build failed for target {p.name}", out1)
        for p in programs:
            if p.id not in self.missing:
                self._found(p, bdir / "bench" / p.name)

    def _build_go(self, programs: list[Program]) -> None:
        go = _find_go()
        if go is None:
            for p in programs:
                self._fail(p, "no Go toolchain (scripts/bench-deps.sh installs golang-go)")
            return
        peers = self.ctx.peers_dir
        peers.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(
            GOCACHE=str(peers / "go-cache"),
            GOPATH=str(peers / "go-path"),
            GOMODCACHE=str(peers / "go-path" / "pkg" / "mod"),
            GOFLAGS="",
            GOPROXY="off",
            GOTOOLCHAIN="local",
            GO111MODULE="on",
            CGO_ENABLED="0",
        )
        for p in programs:
            out = peers / f"go_{p.name}"
            if not self.ctx.no_build:
                info(f"building Go peer {p.name}")
                ok, log = _run_build(
                    [go, "build", "-o", str(out), f"./{p.name}"], REPO / "bench/peers/go", env
                )
                if not ok:
                    self._fail(p, "go build failed", log)
                    continue
            self._found(p, out)

    def _build_cargo(self, programs: list[Program]) -> None:
        peers = self.ctx.peers_dir
        target = peers / "tokio-target"
        if not self.ctx.no_build:
            cargo = _find_cargo()
            if cargo is None:
                for p in programs:
                    self._fail(p, "no cargo (scripts/bench-deps.sh installs Debian's cargo)")
                return
            if not any(Path("/usr/share/cargo/registry").glob("tokio-1.*")):
                for p in programs:
                    self._fail(p, "no Tokio sources (scripts/bench-deps.sh installs librust-tokio-dev)")
                return
            # Built from a copy under build/, so that Cargo.lock (written by
            # whichever cargo version is at hand) never lands in the source tree.
            src = peers / "tokio-src"
            shutil.rmtree(src, ignore_errors=True)
            shutil.copytree(
                REPO / "bench/peers/tokio",
                src,
                ignore=shutil.ignore_patterns("target", "Cargo.lock", ".gitignore"),
            )
            env = dict(os.environ)
            env["CARGO_HOME"] = str(peers / "cargo-home")
            info("building Tokio peers")
            ok, log = _run_build(
                [cargo, "build", "--release", "--offline", "--target-dir", str(target)], src, env
            )
            if not ok:
                for p in programs:
                    self._fail(p, "cargo build failed", log)
                return
        for p in programs:
            self._found(p, target / "release" / p.name)


# --------------------------------------------------------------------------
# Benchmark definitions


@dataclasses.dataclass
class Prepared:
    """What a Run.prepare hook decides just before the run."""

    extra_args: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    skip_reason: Optional[str] = None  # set: the run is reported missing


@dataclasses.dataclass
class Run:
    key: str  # result key: spindle, spindle_epoll, boost_fiber, go, ...
    program: Program
    # A Program among the arguments is built too and replaced by its path
    # (a driver that starts another program: the echo client and its server).
    args: list = dataclasses.field(default_factory=list)
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    note: Optional[str] = None  # a footnote shown under the table
    timeout: float = 300.0  # seconds
    # The member of the program's JSON line that is this figure's value. Two
    # figures may read two members of one run: a command (arguments and
    # environment) runs once per runner invocation and its result is reused.
    field: str = "value"

    def programs(self) -> list[Program]:
        """What the run needs built: its program and those among its arguments."""
        return [self.program, *(a for a in self.args if isinstance(a, Program))]
    # Called just before the run (e.g. to raise a sysctl, or to pick a count
    # that fits in memory).
    prepare: Optional[Callable[[Context], Prepared]] = None


@dataclasses.dataclass
class Figure:
    name: str  # "switch-ns": also the file name build/bench/<name>.json
    title: str  # what is measured, one line
    unit: str  # "ns/switch", "KiB/fiber", ...
    lower_is_better: bool
    runs: list[Run]
    # Rounds > 1: every run of the figure runs that many times, interleaved
    # (all runs once, then all again), and the figure is each key's median;
    # a footnote gives each round's value. For figures whose runs move with
    # the machine's state from one run to the next (echo).
    rounds: int = 1


@dataclasses.dataclass
class Benchmark:
    name: str  # "switch": `run.py --only switch`
    description: str  # a paragraph for the markdown section
    figures: list[Figure]
    order: int = 100  # position among the benchmarks (then by name)


def spindle_runs(program: Program, args: list[str], **kw) -> list[Run]:
    """The two spindle runs of a figure: the default backend (io_uring) and
    epoll, the same program with SPINDLE_BACKEND set."""
    return [
        Run("spindle", program, args, {"SPINDLE_BACKEND": "io_uring"}, **kw),
        Run("spindle_epoll", program, args, {"SPINDLE_BACKEND": "epoll"}, **kw),
    ]


# --------------------------------------------------------------------------
# Running


@dataclasses.dataclass
class Outcome:
    key: str
    value: Optional[float]
    notes: list[str]
    seconds: float
    missing_reason: Optional[str] = None


# Results of the commands run so far: (command, environment) -> (JSON
# result or None, notes, seconds, why it failed).
_results: dict[tuple, tuple] = {}


def run_one(run: Run, builder: Builder, ctx: Context, round_index: int = 0) -> Outcome:
    for program in run.programs():
        if builder.path(program) is None:
            reason = builder.missing.get(program.id, "not built")
            return Outcome(run.key, None, [], 0.0, f"not run: {reason}")
    args = [str(builder.path(a)) if isinstance(a, Program) else a for a in run.args]
    path = builder.path(run.program)
    notes = [run.note] if run.note else []
    extra: list[str] = []
    if run.prepare is not None:
        prepared = run.prepare(ctx)
        notes += prepared.notes
        extra = prepared.extra_args
        if prepared.skip_reason:
            warn(f"{run.key}: {prepared.skip_reason}")
            return Outcome(run.key, None, notes, 0.0, prepared.skip_reason)
    cmd = [str(path), *args, *extra]
    env = dict(os.environ)
    env.update(run.env)
    shown_env = " ".join(f"{k}={v}" for k, v in run.env.items())
    info(f"  {run.key}: {shown_env + ' ' if shown_env else ''}{' '.join(cmd)}")
    cache_key = (tuple(cmd), tuple(sorted(run.env.items())), round_index)
    if cache_key not in _results:
        _results[cache_key] = _execute(run, cmd, env)
    result, run_notes, seconds, failure = _results[cache_key]
    notes += run_notes
    if failure is not None:
        return Outcome(run.key, None, notes, seconds, failure)
    if run.field not in result:
        warn(f"{run.key}: the result has no member {run.field!r}")
        return Outcome(run.key, None, notes, seconds, f"no {run.field!r} in the result")
    value = float(result[run.field])
    info(f"    = {value:g} ({seconds:.1f} s)")
    return Outcome(run.key, value, notes, seconds)


def _execute(run: Run, cmd: list[str], env: dict) -> tuple:
    """Runs one command: (its JSON result, notes, seconds, None) or (None,
    notes, seconds, why it failed)."""
    notes: list[str] = []
    start = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            timeout=run.timeout,
        )
    except subprocess.TimeoutExpired:
        seconds = time.monotonic() - start
        warn(f"{run.key}: timed out after {run.timeout:.0f} s")
        return None, notes, seconds, f"timed out after {run.timeout:.0f} s"
    seconds = time.monotonic() - start
    result = None
    for line in reversed(proc.stdout.splitlines()):
        if line.lstrip().startswith("{"):
            try:
                result = json.loads(line)
            except json.JSONDecodeError:
                pass
            break
    if proc.returncode != 0 or not isinstance(result, dict) or "value" not in result:
        why = f"exit status {proc.returncode}" if proc.returncode != 0 else "no JSON result line"
        warn(f"{run.key}: failed ({why}):\n{_tail(proc.stderr + proc.stdout)}")
        return None, notes, seconds, f"failed ({why})"
    if result.get("note"):
        notes.append(str(result["note"]))
    wanted = run.env.get("SPINDLE_BACKEND")
    got = result.get("backend")
    if wanted and got and got != wanted:
        warn(f"{run.key}: asked for backend {wanted}, ran on {got}")
        notes.append(f"asked for the {wanted} backend, ran on {got}")
    return result, notes, seconds, None


def run_figure(fig: Figure, builder: Builder, ctx: Context) -> list[Outcome]:
    info(f"{fig.name}: {fig.title}")
    if fig.rounds <= 1:
        return [run_one(r, builder, ctx) for r in fig.runs]
    rounds = []
    for i in range(fig.rounds):
        info(f"  round {i + 1} of {fig.rounds}")
        rounds.append([run_one(r, builder, ctx, i) for r in fig.runs])
    return [_median_outcome([outcomes[j] for outcomes in rounds]) for j in range(len(fig.runs))]


def _median_outcome(outcomes: list[Outcome]) -> Outcome:
    """One key's rounds as one outcome: the median of the values it has, with
    a footnote listing them all."""
    first = outcomes[0]
    notes = [n for o in outcomes for n in o.notes]
    notes = list(dict.fromkeys(notes))  # once each, in order
    seconds = sum(o.seconds for o in outcomes)
    values = sorted(o.value for o in outcomes if o.value is not None)
    if not values:
        return Outcome(first.key, None, notes, seconds, first.missing_reason)
    mid = len(values) // 2
    median = values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
    shown = " / ".join("failed" if o.value is None else _fmt(o.value) for o in outcomes)
    notes.append(f"median of {len(outcomes)} interleaved runs: {shown}")
    return Outcome(first.key, median, notes, seconds)


# --------------------------------------------------------------------------
# Output


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.1f}"
    return f"{value:.2f}"


def figure_json(fig: Figure, outcomes: list[Outcome]) -> dict:
    return {
        "name": fig.name,
        "unit": fig.unit,
        "lower_is_better": fig.lower_is_better,
        "results": {
            o.key: (None if o.value is None else round(o.value, 4)) for o in outcomes
        },
    }


def figure_markdown(fig: Figure, outcomes: list[Outcome], measured: str = "") -> str:
    base = next((o.value for o in outcomes if o.key == "spindle"), None)
    better = "lower is better" if fig.lower_is_better else "higher is better"
    lines = [
        f"### {fig.name}",
        "",
        f"{fig.title} ({fig.unit}, {better}).",
        "",
        *([measured, ""] if measured else []),
        f"| runtime | {fig.unit} | ratio to spindle |",
        "| --- | ---: | ---: |",
    ]
    footnotes: list[str] = []
    for o in outcomes:
        marks = []
        for n in o.notes + ([o.missing_reason] if o.missing_reason else []):
            if n not in footnotes:
                footnotes.append(n)
            marks.append(str(footnotes.index(n) + 1))
        label = LABELS.get(o.key, o.key)
        if marks:
            label += " " + "".join(f"[{m}]" for m in marks)
        if o.value is None:
            lines.append(f"| {label} | missing | — |")
        else:
            ratio = "—" if not base else f"{o.value / base:.2f}×"
            lines.append(f"| {label} | {_fmt(o.value)} | {ratio} |")
    lines.append("")
    lines.append(
        "Ratio = the runtime's figure / spindle's (io_uring) figure"
        + (" (above 1: spindle is better)." if fig.lower_is_better else " (below 1: spindle is better).")
    )
    if footnotes:
        lines.append("")
        lines += [f"[{i}] {n}  " for i, n in enumerate(footnotes, 1)]
        lines[-1] = lines[-1].rstrip()
    return "\n".join(lines) + "\n"


def machine_description() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cpus = os.cpu_count() or 0
    try:
        cpus = len(os.sched_getaffinity(0))  # what `nproc` prints
    except (AttributeError, OSError):
        pass
    kernel = os.uname().release
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError):
        pass
    return f"{cpus} × {model}{mem}, Linux {kernel}"


def mem_available_kib() -> Optional[int]:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


# --------------------------------------------------------------------------
# Hooks for Run.prepare

_restore_actions: list[Callable[[], None]] = []


def restore_system() -> None:
    """Undoes what hooks changed on the system (sysctls); run.py calls it
    once at the end."""
    while _restore_actions:
        _restore_actions.pop()()


def at_end(action: Callable[[], None]) -> None:
    """Runs `action` when the runner is done (restore_system), e.g. to delete
    a file a hook made."""
    _restore_actions.append(action)


def page_cached_file(kind: str, size: int, write: Callable[[BinaryIO], Prepared],
                     what: str = "") -> Callable[[Context], Prepared]:
    """A prepare hook that hands the runs ``--file PATH``: a file of about
    `size` bytes that `write` writes (returning any further arguments and
    notes), in a temporary directory on disk ($TMPDIR, /var/tmp or /tmp; not
    a small tmpfs such as /dev/shm), read once so that it is in the page
    cache. Made at the first run that needs it, once per runner invocation,
    and deleted at the end. Skipped when it would not stay in the page cache
    or there is no room; `what` describes the content in the log line."""
    made: list[Prepared] = []

    def make() -> Prepared:
        avail = mem_available_kib()
        if avail is not None and avail * 1024 < 2 * size:
            return Prepared(skip_reason=f"less than {2 * size >> 30} GiB of memory available: "
                            f"the {size >> 30} GiB file would not stay in the page cache")
        room = size + size // 2
        where = next((d for d in (os.environ.get("TMPDIR"), "/var/tmp", "/tmp")
                      if d and os.path.isdir(d) and os.access(d, os.W_OK)
                      and shutil.disk_usage(d).free >= room), None)
        if where is None:
            return Prepared(
                skip_reason=f"no temporary directory with {room / (1 << 30):g} GiB free")
        tmp = Path(tempfile.mkdtemp(prefix=f"spindle-bench-{kind}-", dir=where))
        at_end(lambda: shutil.rmtree(tmp, ignore_errors=True))
        path = tmp / kind
        info(f"writing {size >> 20} MiB{what} to {path} (deleted at the end)")
        try:
            with open(path, "wb") as f:
                extra = write(f)
            with open(path, "rb") as f:  # into the page cache
                while f.read(8 << 20):
                    pass
        except OSError as e:
            warn(f"cannot write {path}: {e}")
            return Prepared(skip_reason=f"cannot write the file: {e}")
        return Prepared(["--file", str(path), *extra.extra_args], notes=extra.notes)

    def prepare(ctx: Context) -> Prepared:
        del ctx
        if not made:
            made.append(make())
        return made[0]

    return prepare


def all_of(*hooks: Callable[[Context], Prepared]) -> Callable[[Context], Prepared]:
    """Several prepare hooks as one: arguments and notes add up, the first
    skip wins."""

    def prepare(ctx: Context) -> Prepared:
        total = Prepared()
        for hook in hooks:
            p = hook(ctx)
            total.extra_args += p.extra_args
            total.notes += p.notes
            if p.skip_reason:
                total.skip_reason = p.skip_reason
                break
        return total

    return prepare


def max_map_count(minimum: int, fallback_args: list[str], fallback_note: str):
    """Makes sure vm.max_map_count is at least `minimum`, raising it (as root)
    for the rest of the run and restoring it at the end. If it cannot, the
    run gets `fallback_args` and a footnote."""
    path = Path("/proc/sys/vm/max_map_count")

    def prepare(ctx: Context) -> Prepared:
        try:
            current = int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError) as e:
            warn(f"cannot read {path}: {e}")
            return Prepared(fallback_args, [f"{fallback_note} (vm.max_map_count unreadable)"])
        if current >= minimum:
            return Prepared()
        try:
            path.write_text(f"{minimum}\n")
            if int(path.read_text().split()[0]) < minimum:
                raise OSError("the value did not stick")
        except OSError as e:
            warn(f"vm.max_map_count is {current} and cannot be raised to {minimum} ({e}); "
                 f"running with {' '.join(fallback_args)}")
            return Prepared(fallback_args, [f"{fallback_note} (vm.max_map_count = {current})"])
        info(f"raised vm.max_map_count from {current} to {minimum} (restored at the end)")

        def restore() -> None:
            try:
                path.write_text(f"{current}\n")
                info(f"restored vm.max_map_count to {current}")
            except OSError as e:
                warn(f"could not restore vm.max_map_count to {current}: {e}")

        _restore_actions.append(restore)
        return Prepared()

    return prepare


def fit_count(counts: list[int], kib_each: float, what: str):
    """Passes `--count N` with the first N of `counts` whose estimated memory
    (N × kib_each) fits in three quarters of MemAvailable, and a footnote if it is not
    the first."""

    def prepare(ctx: Context) -> Prepared:
        avail = mem_available_kib()
        for n in counts:
            if avail is None or n * kib_each <= avail * 0.75:
                break
        else:
            return Prepared(skip_reason=f"not enough memory for {counts[-1]:,} {what}")
        if n == counts[0]:
            return Prepared(["--count", str(n)])
        warn(f"only {n:,} {what}: {counts[0]:,} need about "
             f"{counts[0] * kib_each / 1024 / 1024:.1f} GiB, {avail / 1024 / 1024:.1f} GiB available")
        return Prepared(["--count", str(n)], [f"{n:,} {what} instead of {counts[0]:,} (memory)"])

    return prepare

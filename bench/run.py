#!/usr/bin/env python3
"""Runs spindle's benchmarks and their peers, side by side.

    python3 bench/run.py [--only NAME[,NAME...]] [--build-dir build/release]
                         [--out-dir build/bench] [--update-docs] [--no-build] [--list]

NAME is a benchmark (switch) or one figure of it (spawn-rss). For each figure
it writes build/bench/<figure>.json and prints a markdown table; for each
benchmark it writes build/bench/<benchmark>.md. --update-docs also rewrites
the benchmark's section of docs/benchmarks.md. The benchmarks are the modules
in bench/suites/ (see bench/README.md). Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import re
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import REPO, Benchmark, Builder, Context, Figure, info, warn  # noqa: E402

DOCS = REPO / "docs" / "benchmarks.md"


def load_benchmarks() -> list[Benchmark]:
    found = []
    for path in sorted((Path(__file__).resolve().parent / "suites").glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = importlib.import_module(f"suites.{path.stem}")
        bench = getattr(module, "BENCHMARK", None)
        if bench is None:
            warn(f"bench/suites/{path.name} defines no BENCHMARK")
            continue
        found.append(bench)
    names = [b.name for b in found]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        sys.exit(f"duplicate benchmark names: {', '.join(sorted(dupes))}")
    return sorted(found, key=lambda b: (b.order, b.name))


def select(benchmarks: list[Benchmark], only: list[str]) -> list[tuple[Benchmark, list[Figure]]]:
    if not only:
        return [(b, list(b.figures)) for b in benchmarks]
    chosen: list[tuple[Benchmark, list[Figure]]] = []
    for name in only:
        hit = False
        for b in benchmarks:
            figs = list(b.figures) if b.name == name else [f for f in b.figures if f.name == name]
            if not figs:
                continue
            hit = True
            for entry in chosen:
                if entry[0] is b:
                    entry[1].extend(f for f in figs if f not in entry[1])
                    break
            else:
                chosen.append((b, figs))
        if not hit:
            known = ", ".join(
                [b.name for b in benchmarks] + [f.name for b in benchmarks for f in b.figures]
            )
            sys.exit(f"no benchmark or figure named {name!r} (known: {known})")
    # Keep the registry's order of benchmarks and figures.
    order = {id(b): i for i, b in enumerate(benchmarks)}
    chosen.sort(key=lambda e: order[id(e[0])])
    return [(b, [f for f in b.figures if f in figs]) for b, figs in chosen]


def section_markdown(bench: Benchmark, out_dir: Path) -> str:
    """The markdown of one benchmark: its description and the table of every
    figure measured so far (the fragments in build/bench/md/)."""
    parts = [f"## {bench.name}", "", bench.description, ""]
    for fig in bench.figures:
        frag = out_dir / "md" / f"{fig.name}.md"
        if frag.is_file():
            parts.append(frag.read_text())
        else:
            parts += [f"### {fig.name}", "", "Not measured yet.", ""]
    return "\n".join(parts).rstrip() + "\n"


def update_docs(docs: Path, bench: Benchmark, section: str, machine: str, when: str) -> None:
    begin, end = f"<!-- bench:{bench.name}:begin -->", f"<!-- bench:{bench.name}:end -->"
    header = (
        "<!-- bench:header:begin -->\n"
        "# Benchmarks\n\n"
        "Written by `python3 bench/run.py --update-docs` (`make bench`); each section is "
        "replaced when its benchmark runs again. How the figures are measured: "
        "bench/README.md.\n\n"
        f"Machine: {machine}. Last updated {when}.\n"
        "<!-- bench:header:end -->\n"
    )
    text = docs.read_text() if docs.is_file() else ""
    hb, he = "<!-- bench:header:begin -->", "<!-- bench:header:end -->"
    if hb in text and he in text:
        text = re.sub(re.escape(hb) + r".*?" + re.escape(he) + r"\n?", lambda _: header, text,
                      flags=re.S)
    else:
        text = header + ("\n" + text if text else "")
    block = f"{begin}\n{section}{end}\n"
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", lambda _: block, text,
                      flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(text)
    info(f"updated {docs} (section {bench.name})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", action="append", default=[],
                    help="benchmark or figure name; repeat or separate with commas")
    ap.add_argument("--build-dir", default="build/release",
                    help="CMake build directory with the bench targets (default build/release)")
    ap.add_argument("--out-dir", default="build/bench",
                    help="where JSON, markdown and the Go/Tokio peers go (default build/bench)")
    ap.add_argument("--update-docs", action="store_true",
                    help="rewrite the benchmark's section of docs/benchmarks.md")
    ap.add_argument("--docs", default=str(DOCS.relative_to(REPO)),
                    help="the file --update-docs rewrites (default docs/benchmarks.md)")
    ap.add_argument("--no-build", action="store_true",
                    help="run what is already built; build nothing")
    ap.add_argument("--list", action="store_true", help="list benchmarks and figures and exit")
    args = ap.parse_args()

    benchmarks = load_benchmarks()
    if args.list:
        for b in benchmarks:
            print(f"{b.name}: {', '.join(f.name for f in b.figures)}")
        return 0
    only = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    chosen = select(benchmarks, only)

    def absolute(p: str) -> Path:
        path = Path(p)
        return path if path.is_absolute() else (REPO / path)

    ctx = Context(build_dir=absolute(args.build_dir), out_dir=absolute(args.out_dir),
                  no_build=args.no_build)
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    (ctx.out_dir / "md").mkdir(exist_ok=True)
    machine = harness.machine_description()
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    info(f"machine: {machine}")
    load = os.getloadavg()[0]
    if load > 0.5 * (os.cpu_count() or 1):
        warn(f"the machine is busy (load average {load:.1f}): the figures will be noisy")
        machine += f" (load average {load:.1f} at the start: busy, figures noisy)"

    started = time.monotonic()
    builder = Builder(ctx)
    builder.build([p for _, figs in chosen for f in figs for r in f.runs for p in r.programs()])

    missing_total = 0
    spindle_missing = 0
    try:
        for bench, figs in chosen:
            for fig in figs:
                outcomes = harness.run_figure(fig, builder, ctx)
                missing_total += sum(o.value is None for o in outcomes)
                spindle_missing += sum(
                    o.value is None for o in outcomes if o.key.startswith("spindle"))
                data = harness.figure_json(fig, outcomes)
                (ctx.out_dir / f"{fig.name}.json").write_text(json.dumps(data, indent=2) + "\n")
                md = harness.figure_markdown(fig, outcomes, f"Measured {when} on {machine}.")
                (ctx.out_dir / "md" / f"{fig.name}.md").write_text(md)
                print()
                print(md, flush=True)
            section = section_markdown(bench, ctx.out_dir)
            (ctx.out_dir / f"{bench.name}.md").write_text(section)
            if args.update_docs:
                update_docs(absolute(args.docs), bench, section, machine, when)
    finally:
        harness.restore_system()

    elapsed = time.monotonic() - started
    shown = ctx.out_dir.relative_to(REPO) if ctx.out_dir.is_relative_to(REPO) else ctx.out_dir
    info(f"done in {elapsed:.0f} s; results in {shown}/")
    if missing_total:
        warn(f"{missing_total} result(s) missing: see the warnings above")
    # A peer without its toolchain is reported, not fatal; spindle failing is.
    return 1 if spindle_missing else 0


if __name__ == "__main__":
    sys.exit(main())

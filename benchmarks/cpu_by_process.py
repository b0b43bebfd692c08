"""Where a command's CPU goes, by the role of each process: the command itself, its grading processes, the
sandboxes' zygotes, the workers they fork, the notebook converters.

    python -m benchmarks.cpu_by_process [--every 0.02] [--processes] -- COMMAND ...

for example ``-- python -m grader nbgrader regrade COURSE --workers 2`` (after ``rm -r COURSE/isolated``, or
nothing is graded again) or ``-- python -m grader grade solutions``.

On the 2-core machine a class, a regrade and one ``grade`` keep both cores busy from start to end: their wall
time follows the CPU they spend, not how their steps overlap (starting work earlier or later in another thread
or process only moves it), so a change that makes them faster must spend less CPU somewhere. This says where:
every descendant of COMMAND is read every ``--every`` seconds (psutil) and its user and system CPU taken at
the last reading, beside the whole machine's busy and idle CPU over the same span. A process is counted from
its readings only: one that lives less than a reading apart, and each process's last moments, are missed, so
the roles add up to a little less than the machine's busy CPU (whose difference also holds whatever else runs).

A role is told by the command line: a worker forked by a zygote has its zygote's command line and the zygote
as its parent; behind the process wall a class's zygotes are forked from a template and keep its command line,
and their workers have it as their grandparent's.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import psutil

ROLES = ("command", "grading process", "template", "zygote", "worker (forked)", "converter", "bwrap", "other")


@dataclass
class Seen:
    role: str
    first_s: float
    last_s: float
    cpu_s: float


def role(command: list[str], parent: list[str] | None, is_root: bool, grandparent: list[str] | None = None) -> str:
    """What a process is to the grader, from its command line, its parent's and its grandparent's."""
    line = " ".join(command)
    if is_root:
        return "command"
    if command and command[0].endswith("bwrap"):  # before the rest: its command line ends with the worker's
        return "bwrap"
    if "--zygote" in command:
        return "worker (forked)" if parent == command else "zygote"
    if "--template" in command:  # behind the process wall its zygotes, and their workers, keep its command line
        if parent != command:
            return "template"
        return "worker (forked)" if grandparent == command else "zygote"
    if any(word.endswith("convert.py") for word in command):
        return "converter"
    if "serve(" in line:
        return "grading process"
    return "other"


def machine_cpu(before: Any, after: Any) -> tuple[float, float]:
    """The whole machine's busy and idle CPU-seconds between two ``psutil.cpu_times()`` readings."""
    idle = (after.idle + getattr(after, "iowait", 0.0)) - (before.idle + getattr(before, "iowait", 0.0))
    return sum(after) - sum(before) - idle, idle


def watch(command: list[str], every_s: float) -> tuple[float, dict[tuple[int, float], Seen], float, float]:
    """Run ``command`` to its end, reading its descendants; (wall, processes, machine busy, machine idle)."""
    before = psutil.cpu_times()
    start = time.monotonic()
    root = psutil.Popen(command)
    seen: dict[tuple[int, float], Seen] = {}
    while True:
        now = time.monotonic() - start
        try:
            family = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            family = []
        for process in family:
            try:
                with process.oneshot():
                    key = (process.pid, process.create_time())
                    times = process.cpu_times()
                    if key not in seen:
                        lines: list[list[str] | None] = []
                        try:
                            for parent in process.parents()[:2]:
                                lines.append(parent.cmdline())
                        except psutil.Error:
                            pass
                        lines += [None, None]
                        is_root = process.pid == root.pid
                        seen[key] = Seen(role(process.cmdline(), lines[0], is_root, lines[1]), now, now, 0.0)
            except psutil.Error:  # it ended between the listing and the reading
                continue
            entry = seen[key]
            entry.last_s, entry.cpu_s = now, max(entry.cpu_s, times.user + times.system)
        if root.poll() is not None:
            break
        time.sleep(every_s)
    wall = time.monotonic() - start
    return wall, seen, *machine_cpu(before, psutil.cpu_times())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=float, default=0.02, help="seconds between readings (default 0.02)")
    parser.add_argument("--processes", action="store_true", help="also list each process over 0.1 CPU-s")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to watch after --")
    wall, seen, busy, idle = watch(command, args.every)
    print(f"{' '.join(command)}")
    print(f"  wall {wall:.2f} s; the machine's CPU over it: {busy:.1f} s busy, {idle:.1f} s idle "
          f"({psutil.cpu_count()} cores)")  # fmt: skip
    count = Counter(entry.role for entry in seen.values())
    cpu: dict[str, float] = defaultdict(float)
    for entry in seen.values():
        cpu[entry.role] += entry.cpu_s
    print(f"  {'role':<16} {'processes':>9} {'CPU-s':>7}")
    for name in ROLES:
        if name in count:
            print(f"  {name:<16} {count[name]:>9} {cpu[name]:>7.2f}")
    print(f"  {'all':<16} {len(seen):>9} {sum(e.cpu_s for e in seen.values()):>7.2f}")
    if args.processes:
        print(f"  {'role':<16} {'from s':>7} {'to s':>7} {'CPU-s':>7}")
        for entry in sorted(seen.values(), key=lambda e: e.first_s):
            if entry.cpu_s > 0.1:
                print(f"  {entry.role:<16} {entry.first_s:>7.2f} {entry.last_s:>7.2f} {entry.cpu_s:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

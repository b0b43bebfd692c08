"""One control group per worker: memory that binds (tmpfs and memfd pages too), a process cap, a freezer.

Where the grader may create cgroups (root, with the v1 ``memory``, ``pids`` and ``freezer``
hierarchies, or a v2 group whose subtree has the ``memory`` and ``pids`` controllers), every
worker is started inside a new group of its own, a child of the grader's own group:

- ``memory``: the kernel charges every page the worker's processes touch, anonymous, tmpfs
  (``/dev/shm``, ``/tmp``) and memfd alike, each page once however many processes share it,
  and kills a process of the group when the limit is reached; ``oom_kills`` tells the grader
  that this is what happened;
- ``pids``: a fork bomb stops at ``max_pids`` processes and threads;
- the freezer stops every process of the group at once (the timed item freezes the
  worker while it times the reference);
- ``kill`` ends every process of the group, wherever it has gone (another session, a
  double fork), and ``remove`` deletes the group.

The grader only ever touches groups it created: their names start with ``PREFIX`` and the
grader's process id, and they are removed when the worker ends. A grader killed with ``kill -9`` cannot
remove its groups, and a group it had frozen (the timed item) keeps its processes stopped forever:
``sweep``, run when a class run starts, thaws, kills and removes every group whose grader is gone.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox import scratch

PREFIX = "genmath-grader"
V1_CONTROLLERS = ("memory", "pids", "freezer")
_counter = itertools.count()


def _own_groups() -> dict[str, str]:
    """controller (or "" for v2) → this process's group path, from /proc/self/cgroup."""
    found: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            found[name] = path
    return found


def _mounts() -> dict[str, tuple[str, str]]:
    """controller (or "" for v2) → (mount point, root of the mount), from /proc/self/mountinfo."""
    found: dict[str, tuple[str, str]] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        dash = fields.index("-")
        fstype, options = fields[dash + 1], fields[dash + 3].split(",")
        root, point = fields[3], fields[4]
        if fstype == "cgroup2":
            found.setdefault("", (point, root))
        elif fstype == "cgroup":
            for controller in V1_CONTROLLERS:
                if controller in options:
                    found.setdefault(controller, (point, root))
    return found


def _join(point: str, root: str, path: str) -> Path:
    relative = path[len(root) :] if root != "/" and path.startswith(root) else path
    return Path(point) / relative.lstrip("/")


def parents() -> tuple[str, dict[str, Path]] | None:
    """("v1" or "v2", controller → the folder under which worker groups are created), or None."""
    if os.geteuid() != 0 or not Path("/proc/self/cgroup").exists():
        return None
    try:
        own, mounts = _own_groups(), _mounts()
    except (OSError, ValueError):
        return None
    if all(c in mounts and c in own for c in V1_CONTROLLERS):
        folders = {c: _join(*mounts[c], own[c]) for c in V1_CONTROLLERS}
        if all(os.access(f, os.W_OK) for f in folders.values()):
            return "v1", folders
    if "" in mounts and "" in own:
        folder = _join(*mounts[""], own[""])
        try:
            enabled = (folder / "cgroup.subtree_control").read_text().split()
        except OSError:
            return None
        if {"memory", "pids"} <= set(enabled) and os.access(folder, os.W_OK):
            return "v2", {"": folder}
    return None


@dataclass
class Cgroup:
    version: str
    folders: dict[str, Path]  # controller → this group's folder ("" for v2)

    @classmethod
    def create(cls, memory_bytes: int, max_pids: int) -> Cgroup | None:
        """A new group with these limits, or None where cgroups cannot be used here."""
        found = parents()
        if found is None:
            return None
        version, under = found
        name = f"{PREFIX}-{os.getpid()}-{next(_counter)}"
        group = cls(version, {c: folder / name for c, folder in under.items()})
        try:
            for folder in group.folders.values():
                folder.mkdir()
            if version == "v1":
                group._write("memory", "memory.limit_in_bytes", str(memory_bytes))
                if (group.folders["memory"] / "memory.memsw.limit_in_bytes").exists():
                    group._write("memory", "memory.memsw.limit_in_bytes", str(memory_bytes))
                group._write("pids", "pids.max", str(max_pids))
            else:
                group._write("", "memory.max", str(memory_bytes))
                group._write("", "memory.swap.max", "0")
                group._write("", "pids.max", str(max_pids))
        except OSError:
            group.remove()
            return None
        return group

    def _write(self, controller: str, name: str, value: str) -> None:
        (self.folders[controller] / name).write_text(value)

    def _read(self, controller: str, name: str) -> str:
        return (self.folders[controller] / name).read_text()

    def enter(self, pid: int) -> None:
        """Move process ``pid`` into the group (called in the child before exec, so all it starts is inside)."""
        for folder in self.folders.values():
            with open(folder / "cgroup.procs", "w") as f:
                f.write(str(pid))

    def pids(self) -> list[int]:
        controller = "pids" if self.version == "v1" else ""
        try:
            return [int(p) for p in self._read(controller, "cgroup.procs").split()]
        except OSError:
            return []

    def oom_kills(self) -> int:
        """How many processes the kernel killed for going over the memory limit."""
        try:
            text = (
                self._read("memory", "memory.oom_control") if self.version == "v1" else self._read("", "memory.events")
            )
        except OSError:
            return 0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def freeze(self, frozen: bool, timeout_s: float = 5.0) -> bool:
        """Stop (or resume) every process of the group; True once the kernel says it is done."""
        try:
            if self.version == "v1":
                self._write("freezer", "freezer.state", "FROZEN" if frozen else "THAWED")
                want = "FROZEN" if frozen else "THAWED"
                deadline = time.monotonic() + timeout_s
                while self._read("freezer", "freezer.state").strip() != want:
                    if time.monotonic() > deadline:
                        return False
                    time.sleep(0.001)
                return True
            self._write("", "cgroup.freeze", "1" if frozen else "0")
            deadline = time.monotonic() + timeout_s
            while f"frozen {int(frozen)}" not in self._read("", "cgroup.events"):
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.001)
            return True
        except OSError:
            return False

    def kill(self, timeout_s: float = 10.0) -> None:
        """SIGKILL every process of the group until none is left (a frozen group is thawed so they die)."""
        deadline = time.monotonic() + timeout_s
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.freeze(False, timeout_s=0.1)
            time.sleep(0.01)

    def remove(self) -> None:
        self.kill()
        for folder in self.folders.values():
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # still busy for a moment after its last process was reaped
                    time.sleep(0.02)


def sweep() -> list[str]:
    """Thaw, kill and remove the groups of graders that are gone (named ``PREFIX-<pid>-<n>``, ``scratch.gone(pid)``);
    the names of those removed. A live grader's groups, and every other group, are left alone."""
    return _remove_where(lambda owner: scratch.gone(int(owner)))


def remove_own() -> list[str]:
    """Thaw, kill and remove every group this process made that is still there, as it ends; the names of those
    removed. A signal that ends a grading process while it makes a worker's group, before any sandbox knows of
    the group, would otherwise leave it to the next run's ``sweep``."""
    own = str(os.getpid())
    return _remove_where(lambda owner: owner == own)


def _remove_where(owned: Callable[[str], bool]) -> list[str]:
    """Remove the grader's groups whose owner (the pid in ``PREFIX-<pid>-<n>``) is ``owned``; their names."""
    found = parents()
    if found is None:
        return []
    version, under = found
    names: set[str] = set()
    for folder in under.values():
        try:
            names |= {p.name for p in folder.iterdir() if p.is_dir() and p.name.startswith(PREFIX + "-")}
        except OSError:
            continue
    removed = []
    for name in sorted(names):
        owner = name[len(PREFIX) + 1 :].split("-")[0]
        if not owner.isdigit() or not owned(owner):
            continue
        Cgroup(version, {c: folder / name for c, folder in under.items()}).remove()  # a missing one: skipped
        removed.append(name)
    return removed

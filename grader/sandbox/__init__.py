"""The wall around student code: worker processes, with no privilege, bounded, in a sandbox.

Every submission is graded by worker processes (``worker.py``) that receive plain inputs and
return plain data over a pipe; notebooks are read by a converter process (``convert.py``)
started the same way. What the grader puts around each of them, strongest first:

- **bubblewrap** (``bwrap``), where it can build the sandbox here: a new user, mount, PID,
  network, IPC and UTS namespace, in which the process runs as uid/gid 65534 with no
  capabilities (``--cap-drop ALL``), cannot create another user namespace
  (``--disable-userns``) and runs under a seccomp filter (grader/sandbox/seccomp.py: no ptrace,
  mount, unshare, keyring, BPF, ...). It sees the system's directories, the Python
  installation, its own runtime files and the private copy of the submission, all
  read-only (files that not everyone may read, such as /etc/shadow, are masked), and a
  writable /tmp and /dev/shm of ``TMPFS_MB`` each. Not the project (``reference/``,
  ``solutions/``), the original submission, the gradebook or the report.
- **a cgroup per worker** (grader/sandbox/cgroups.py), where the grader may create them: memory
  that binds, counted once and including tmpfs and memfd pages; at most ``MAX_PIDS``
  processes; a freezer.
- **rlimits** (core dumps, file size, data segment on the CPU) and, without cgroups, a
  watch on the proportional set size (PSS, so pages shared between a worker and its forks
  count once) plus memfd files.
- **its own PID namespace**, bwrap's: a worker cannot see or signal the grader, and every process it
  starts dies with it.
- **the process wall**, where bubblewrap cannot run and the grader is root (grader/sandbox/uids.py,
  confine.py, landlock.py): an unprivileged uid for each submission graded at once, no new
  privileges, the same seccomp filter, Landlock where the kernel has it; every process, file and IPC
  object of that uid removed after each submission; in a class, each submission's zygote is forked,
  confined, from a template that imported torch once (``template.py``). Behind neither, the wall is ``none``, and
  grading other people's code is refused unless asked for.
- **its own session and process group**, a time limit per request, and the grader as a
  child subreaper that kills whatever is left in a worker's cgroup or process tree.

A worker that hangs, crashes, exits, sends what cannot be read or grows past its memory
limit is killed with everything it started, the request is answered with ``WorkerDied``
saying why, and the next request gets a fresh worker.

In parts, each small enough to read at once: ``isolation.py`` (what this machine allows, and
bubblewrap's mounts), ``processes.py`` (starting a worker under its limits, watching and ending
it), ``channel.py`` (requests and replies), ``workers.py`` (a submission's workers), with
``cgroups.py``, ``seccomp.py``, and the process wall's ``uids.py``, ``confine.py``, ``landlock.py`` and
``template.py`` beside them.
"""

from __future__ import annotations

from grader.sandbox.channel import WorkerDied, checked_reply
from grader.sandbox.isolation import Isolation, SandboxUnavailable, Wall, bubblewrap, wall
from grader.sandbox.processes import Limits
from grader.sandbox.workers import Runner, Sandbox

__all__ = [
    "Isolation", "Limits", "Runner", "Sandbox", "SandboxUnavailable", "Wall", "WorkerDied", "bubblewrap",
    "checked_reply", "wall",
]  # fmt: skip

"""The grader's scratch folders in the temporary directory, named for the process that made them.

Every scratch folder of the grader (a sandbox's, a payload's, an entry's) is called
``grader-<kind>-<pid>-<random>``. A grader ends its own; one killed with ``kill -9`` cannot, and its
folders (a submission's copy among them) would stay: ``sweep``, run when a class run starts,
removes those whose process is gone, folders a student locked (mode 000) included, never following
a link. Folders of a live process, and every other entry, are left alone.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

NAME = re.compile(r"grader-(sandbox|payload|entry)-(\d+)-")


def prefix(kind: str) -> str:
    """The prefix of a new scratch folder of ``kind`` (sandbox, payload, entry) for this process."""
    return f"grader-{kind}-{os.getpid()}-"


def sweep(root: Path | None = None) -> list[str]:
    """Remove the scratch folders of grader processes that are gone; the names of those removed."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    for entry in entries:
        found = NAME.match(entry.name)
        if found is None or Path(f"/proc/{found.group(2)}").exists() or not entry.is_dir(follow_symlinks=False):
            continue
        _unlock(entry.path)
        shutil.rmtree(entry.path, ignore_errors=True)
        if not os.path.lexists(entry.path):
            removed.append(entry.name)
    return removed


def _unlock(path: str) -> None:
    """Make every folder under ``path`` listable and writable by its owner, never following a link."""
    try:
        os.chmod(path, stat.S_IRWXU, follow_symlinks=False)
    except OSError:
        return
    for folder, folders, _ in os.walk(path):
        for name in folders:
            child = os.path.join(folder, name)
            if not os.path.islink(child):
                try:
                    os.chmod(child, stat.S_IRWXU)
                except OSError:
                    pass

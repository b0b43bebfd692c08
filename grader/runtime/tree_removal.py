"""Removing a folder that a worker may have written in: however deep or wide, never following a link.

``shutil.rmtree`` and ``os.walk`` (before Python 3.12) recurse once a level: a tree a few thousand
folders deep, which a worker's code makes in well under a second wherever it may write, raised
RecursionError. The grader removes with this what a worker may have written (a sandbox's scratch
folder, a worker uid's files, a dead grader's folders: grader/sandbox/), and so does the zygote
inside bubblewrap, emptying the sandbox's /tmp between students (worker.py): hence here, in what the
sandbox sees, on the standard library alone.

Each folder is emptied of its files and its own folders are moved up into the top folder, under
fresh names, to be taken in turn: nothing recurses, no more than two folders are open at once, and
every step goes through a descriptor, never a path that a link swapped in could redirect. A folder
locked (mode 000) is given mode 700 first, through an ``O_PATH`` descriptor where it cannot be opened.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import stat

_READ = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC  # a folder to list (a name is opened with O_NOFOLLOW too)


def remove_tree(path: str) -> bool:
    """Remove ``path`` and everything in it, however deep or wide, never following a link (a link itself is
    removed, not what it points to); whether it is gone."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError:
            return False
        return True
    top = _open_folder(path, None)
    if top is None:
        return False
    try:
        if not _flatten(top):
            return False
    finally:
        os.close(top)
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


def _flatten(top: int) -> bool:
    """Empty the folder ``top``: each folder in it is emptied of its files, its own folders moved up into ``top``
    (under fresh names, and taken in turn), and removed. ``top`` is listed again only at the end (a folder
    keeps its size once grown: listing it after every level made a deep and wide tree quadratic)."""
    names = itertools.count()
    for _ in range(3):  # up to two more looks: what a process still running may have added meanwhile
        pending = _empty_of_files(top)
        if pending is None:
            return False
        if not pending:
            return True
        while pending:
            name = pending.pop()
            folder = _open_folder(name, top)
            if folder is None:
                return False
            try:
                inner = _empty_of_files(folder)
                if inner is None:
                    return False
                for sub in inner:
                    moved = _move_up(sub, folder, top, names)
                    if moved is None:
                        return False
                    pending.append(moved)
            finally:
                os.close(folder)
            try:
                os.rmdir(name, dir_fd=top)
            except FileNotFoundError:
                pass
            except OSError:
                return False
    return False


def _open_folder(name: str, parent: int | None) -> int | None:
    """A descriptor of the folder ``name`` (in the folder ``parent``, or a path) that its owner may list and write,
    mode 700 given where it had less; None if it is not a folder (a link is not one) or cannot be opened."""
    folder: int | None
    try:
        folder = os.open(name, _READ | os.O_NOFOLLOW, dir_fd=parent)
    except PermissionError:  # locked (mode 000), and this is not root: opened up through an O_PATH descriptor
        folder = _opened_up(name, parent)
    except OSError:  # gone, a link (ELOOP), not a folder (ENOTDIR)
        return None
    if folder is None:
        return None
    try:
        if stat.S_IMODE(os.fstat(folder).st_mode) & stat.S_IRWXU != stat.S_IRWXU:
            os.fchmod(folder, stat.S_IRWXU)
    except OSError:
        os.close(folder)
        return None
    return folder


def _opened_up(name: str, parent: int | None) -> int | None:
    """The folder ``name``, which its owner may not read, given mode 700 and opened; None if it cannot be."""
    if not hasattr(os, "O_PATH"):  # not Linux: chmod there can refuse to follow a link
        try:
            os.chmod(name, stat.S_IRWXU, dir_fd=parent, follow_symlinks=False)
            return os.open(name, _READ | os.O_NOFOLLOW, dir_fd=parent)
        except (OSError, NotImplementedError):
            return None
    try:
        held = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=parent)
    except OSError:
        return None
    try:
        os.chmod(f"/proc/self/fd/{held}", stat.S_IRWXU)  # the folder held, whatever its name is now
        return os.open(f"/proc/self/fd/{held}", _READ)
    except OSError:
        return None
    finally:
        os.close(held)


def _empty_of_files(folder: int) -> list[str] | None:
    """Remove every entry of the folder ``folder`` (a descriptor) that is not a folder, links included; the names
    of its folders, or None if something could not be removed."""
    if not isinstance(folder, int):  # os.scandir(None) would list, and this empty, the current folder
        raise TypeError("a folder's descriptor is needed")
    folders = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.name)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.name, dir_fd=folder)
    except OSError:
        return None
    return folders


def _move_up(name: str, parent: int, top: int, names: itertools.count[int]) -> str | None:
    """Move the folder ``name`` of ``parent`` into ``top`` under a name no entry of ``top`` has; that name, or None
    if it could not be moved."""
    while True:
        new = f".grader-{next(names)}"
        try:
            os.stat(new, dir_fd=top, follow_symlinks=False)
            continue
        except FileNotFoundError:
            pass
        except OSError:
            return None
        try:
            os.rename(name, new, src_dir_fd=parent, dst_dir_fd=top)
            return new
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                return None

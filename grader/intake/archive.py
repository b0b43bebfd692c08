"""Submissions as bytes: a zip that students or a class batch hand in, read safely; a folder packed canonically.

A class is graded from payloads: each submission is taken in (grader/intake/), then packed
into a zip whose bytes depend only on its files (sorted names, a fixed date, fixed modes), so that
it can travel to another machine (a Dask worker) and so that its ``digest`` says whether a stored
result is still the submission's.

A zip from a student is hostile: ``unpack`` writes only regular files and folders under the
target, refuses absolute names, ``..``, links and special files, and reads every member through
the same caps as the intake (entries, depth, one file, the total), counting the bytes it really
inflates rather than the sizes the zip declares, so a zip bomb stops at the cap.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import zipfile
from pathlib import Path, PurePosixPath

from grader.intake import CHUNK, MAX_DEPTH, MAX_ENTRIES, MAX_FILE_BYTES, MAX_TOTAL_BYTES, Intake

FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold: the same bytes on every run


class Unreadable(ValueError):
    """The bytes are not a zip the grader can read; the message says why, in words for the student."""


def files_of(folder: Path) -> list[Path]:
    """The regular files under ``folder`` (a private copy made by the intake), sorted by relative name."""
    return sorted((p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()), key=lambda p: p.as_posix())


def digest(folder: Path) -> str:
    """SHA-256 over each file's relative name and bytes: equal for equal contents, whatever the packing."""
    h = hashlib.sha256()
    for path in files_of(folder):
        name = os.fsencode(path.relative_to(folder).as_posix())
        data = path.read_bytes()
        h.update(b"%d:%s%d:" % (len(name), name, len(data)))
        h.update(data)
    return h.hexdigest()


def pack(folder: Path) -> bytes:
    """The files under ``folder`` as a zip whose bytes depend only on the files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files_of(folder):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), FIXED_DATE)
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _member_path(info: zipfile.ZipInfo) -> PurePosixPath | None:
    """The member's relative path, or None when it would land outside the target or cannot be a name."""
    name = info.filename.replace("\\", "/")
    if "\x00" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return PurePosixPath(*parts)


def unpack(data: bytes, into: Path) -> Intake:
    """Write the regular files and folders of the zip ``data`` under the new folder ``into``; what was left out
    and why in the returned Intake's problems. Unreadable when the bytes are not a zip at all."""
    intake = Intake()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as err:
        raise Unreadable(f"it is not a zip file that can be read ({err})") from None
    into.mkdir(mode=0o755)
    with archive:
        for info in members:
            try:
                _member(archive, info, into, intake)
            except Exception as err:  # a damaged member is that member's note: the other members are still read
                intake.refuse(info.filename, f"could not be read from the zip ({_why(err)})")
    return intake


def _why(err: BaseException) -> str:
    """What went wrong, in words that name no path of the grader's (an OSError's message holds its path)."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, into: Path, intake: Intake) -> None:
    """One member written under ``into``, or refused with a note."""
    path = _member_path(info)
    shown = info.filename
    if path is None:
        intake.refuse(shown, "has a name that points outside the submission")
        return
    if any(p.startswith(".") or p == "__pycache__" for p in path.parts) or path.parts[0] == "__MACOSX":
        return  # hidden entries and macOS resource forks are never graded
    intake.entries += 1
    if intake.entries > MAX_ENTRIES:
        intake.refuse(shown, f"is past the first {MAX_ENTRIES} files and folders")
        return
    if len(path.parts) > MAX_DEPTH + 1:
        intake.refuse(shown, f"is more than {MAX_DEPTH} folders deep")
        return
    kind = stat.S_IFMT(info.external_attr >> 16)
    if info.is_dir():
        _folder(into, path)
        return
    if kind not in (0, stat.S_IFREG):
        intake.refuse(shown, "is a link or a special file")
        return
    if info.flag_bits & 0x1:
        intake.refuse(shown, "is encrypted")
        return
    _extract(archive, info, into, path, intake)


def _folder(into: Path, path: PurePosixPath) -> Path:
    """``into / path``, creating the folders on the way (each a real folder: nothing was written as a link)."""
    target = into
    for part in path.parts:
        target = target / part
        if target.exists() and not target.is_dir():
            raise FileExistsError(errno.EEXIST, "a file of that name is already in the zip")
        if not target.is_dir():
            target.mkdir(mode=0o755)
    return target


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, into: Path, path: PurePosixPath, intake: Intake) -> None:
    """One member, read through the caps: the bytes counted are those inflated, not those declared."""
    shown = info.filename
    folder = _folder(into, path.parent) if path.parent.parts else into
    target = folder / path.name
    if target.exists():
        intake.refuse(shown, "appears twice in the zip")
        return
    written = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:  # from here the file is this member's: a damaged member (zlib, bz2, lzma, the OS) leaves none of it
        with open(fd, "wb", closefd=True) as sink, archive.open(info) as source:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                if written > MAX_FILE_BYTES or intake.bytes + written > MAX_TOTAL_BYTES:
                    break
                sink.write(chunk)
    except BaseException:
        target.unlink()
        raise
    if written > MAX_FILE_BYTES or intake.bytes + written > MAX_TOTAL_BYTES:
        target.unlink()
        intake.refuse(shown, f"inflates past {MAX_FILE_BYTES // 2**20} MB, or the submission past "
                      f"{MAX_TOTAL_BYTES // 2**20} MB in all")  # fmt: skip
        return
    intake.files += 1
    intake.bytes += written

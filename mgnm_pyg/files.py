"""Atomic file writes: write to a temporary file beside the target, then rename.

A reader never sees a half-written file, and an interrupted write leaves the
previous version (or nothing) in place. Also :func:`process_lock`, a lock file that
keeps two processes off the same work.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mgnm_pyg.errors import MGNMError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _plain_mode(path: Path, default: int) -> int:
    """The mode a plainly created ``path`` would get: ``default`` under the umask, or the
    mode of the file it replaces (``mkstemp``/``mkdtemp`` make theirs private, 0600 and
    0700, which would hide run folders and datasets from everyone else on a shared box)."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return default & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, _plain_mode(path, 0o666))
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[Any]) -> None:
    """Write ``rows`` as JSON lines (keys sorted) to ``path`` atomically."""
    atomic_write_text(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it replaces ``path`` on success.

    Used for prepared datasets: either the whole folder is there or none of it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        os.chmod(tmp, _plain_mode(path, 0o777))
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class LockHeld(MGNMError):
    """:func:`process_lock` found its lock held by another live process (``pid``)."""

    def __init__(self, message: str, pid: int) -> None:
        super().__init__(message)
        self.pid = pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    return True


@contextlib.contextmanager
def process_lock(lock: str | Path, busy: str = "busy") -> Iterator[None]:
    """Hold the file ``lock`` (holding this process's pid) for the ``with`` block.

    Raises :class:`LockHeld` ("``busy``: held by process PID (LOCK) ...") while another
    live process holds it; a lock left by a process that no longer exists (killed) is
    taken over. The lock is put in place with a hard link, which fails when it exists, so
    two processes do not both get a free lock (taking over a stale one is best effort).
    """
    lock = Path(lock)
    lock.parent.mkdir(parents=True, exist_ok=True)
    # The pid is written first and the file then linked into place, which fails if the
    # lock exists: no other process can ever read a lock without its pid.
    mine = lock.with_name(f"{lock.name}.{os.getpid()}.tmp")
    mine.write_text(str(os.getpid()))
    try:
        for _ in range(2):
            try:
                os.link(mine, lock)
                break
            except FileExistsError:
                try:
                    pid = int(lock.read_text().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid and pid != os.getpid() and _alive(pid):
                    raise LockHeld(f"{busy}: held by process {pid} ({lock}); wait for it, "
                                   f"or delete the lock if that process is not this "
                                   f"program", pid) from None
                lock.unlink(missing_ok=True)  # stale: its process is gone
        else:
            raise MGNMError(f"{lock}: could not take the lock")
    finally:
        mine.unlink(missing_ok=True)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)

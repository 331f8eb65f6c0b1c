"""Private directories and files that another local user cannot plant or swap (issue 12 §4).

The rule follows OpenSSH's ``StrictModes`` checks for key files, for the state directory and the
ACME certificate cache:

* a directory the provider creates is created component by component with mode 0700, whatever
  the umask;
* the directory itself and every file read from it must be owned by the provider's effective uid
  (or by root) and must not be writable by group or other;
* ancestors are not checked (unlike OpenSSH): whoever can write an ancestor can only swap the
  directory for one they own, which the owner check refuses, or for another directory of ours or
  root's, whose files they cannot have written. This keeps volume mounts that are group-writable
  by design (Kubernetes ``fsGroup``, ``emptyDir``) usable as parents of a 0700 directory.
  A symlinked directory is judged by its target; a file is opened without following a symlink
  and judged by the descriptor actually read (no race between check and use).

A violation raises :class:`UnsafePathError` naming the path, what was found and the fix.
Everything here does file I/O: call it at start-up or from a worker thread.
"""

from __future__ import annotations

import os
import stat

from spire_oidc.errors import StartupError

DIR_MODE = 0o700
_FOREIGN_WRITE = stat.S_IWGRP | stat.S_IWOTH


class UnsafePathError(StartupError):
    """A private directory or file is writable by, or owned by, another user."""

    def __init__(self, path: str, problem: str, fix: str) -> None:
        super().__init__(f"{path}: {problem}; fix it with `{fix}`")
        self.path = path
        self.problem = problem
        self.fix = fix


def _owner_ok(st: os.stat_result) -> bool:
    return st.st_uid in (0, os.geteuid())


def check_private(path: str, st: os.stat_result, *, kind: str) -> None:
    """Refuse a private directory or file (``kind`` names it in the message) that is owned by
    another uid or writable by group/other."""
    mode = stat.S_IMODE(st.st_mode)
    if not _owner_ok(st):
        raise UnsafePathError(
            path,
            f"{kind} is owned by uid {st.st_uid}, not by this process (uid {os.geteuid()}) or root",
            f"chown {os.geteuid()} {path}",
        )
    if mode & _FOREIGN_WRITE:
        want = DIR_MODE if stat.S_ISDIR(st.st_mode) else 0o600
        raise UnsafePathError(
            path,
            f"{kind} has mode {mode:04o}: writable by group or other users",
            f"chmod {want:o} {path}",
        )


def check_private_dir(directory: str, *, kind: str = "directory") -> None:
    """Check an existing private directory (a symlink is judged by its target); raise
    :class:`UnsafePathError`. ``OSError`` (e.g. the directory does not exist) propagates."""
    path = os.path.abspath(directory)
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(path, f"{kind} is not a directory", f"rm {path}")
    check_private(path, st, kind=kind)


def ensure_private_dir(directory: str, *, kind: str = "directory") -> None:
    """Create the missing components of ``directory`` with mode 0700 (the umask does not widen
    them), then check it as :func:`check_private_dir` does.

    Raises :class:`UnsafePathError` for an unsafe path, ``OSError`` when creating fails.
    """
    path = os.path.abspath(directory)
    missing: list[str] = []
    probe = path
    while not os.path.lexists(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    for component in reversed(missing):
        try:
            os.mkdir(component, DIR_MODE)
        except FileExistsError:
            pass  # created concurrently: the check below judges it
        else:
            os.chmod(component, DIR_MODE)  # the umask can only narrow; make it exactly 0700
    check_private_dir(path, kind=kind)


def open_private_file(path: str, *, kind: str = "file", follow_symlinks: bool = False) -> int:
    """Open a private file for reading (by default without following a symlink: ``ELOOP``) and
    check the opened file's owner and mode (no race between check and use). Returns the file
    descriptor. Raises :class:`UnsafePathError`, ``FileNotFoundError`` or another ``OSError``.
    """
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(path, f"{kind} is not a regular file", f"rm {path}")
        check_private(path, st, kind=kind)
    except BaseException:
        os.close(fd)
        raise
    return fd

"""Files and directories only their owner may read: govheal's state and audit log hold alert bodies,
diagnostics and log tails. New directories are 0700 (each one we create, parents too), new files 0600,
and an existing file of ours that others can read is tightened when we open it. Existing directories
are left as they are (a state_dir may be a directory the operator shares on purpose); the files in them
are private either way."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """``mkdir -p`` whose new components are 0700 (``Path.mkdir(parents=True)`` gives parents 0777 & umask)."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made by another process in between: fine
            d.mkdir(mode=DIR_MODE)
    return path


def tighten(path: Path) -> None:
    """chmod 0600 a file of ours that group or others may access (a no-op when it is not there or not ours)."""
    with contextlib.suppress(OSError):
        st = path.stat()
        if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077)


def private_file(path: Path) -> Path:
    """Create ``path`` empty and 0600 if missing, else tighten it; the directory must exist."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        tighten(path)
    return path


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_APPEND | os.O_CREAT):
    """``open(path, "ab")`` that creates the file 0600 (and tightens an existing one)."""
    fd = os.open(path, flags, FILE_MODE)
    tighten(path)
    return os.fdopen(fd, "ab")

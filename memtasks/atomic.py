"""Atomic file writes: a reader (or a re-run after ``kill -9``) sees the old file or the new one, never half.

Every writer of results and checkpoints in the project goes through :func:`atomic_open`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "write_text_atomic"]


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on success fsync it and rename it onto ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was.

    Args:
        path: The file to (re)place; its folder must exist.
        mode: ``"w"`` (text) or ``"wb"`` (bytes).
        **kwargs: Passed to :func:`open` (e.g. ``newline=""``).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are ordinary, shareable files
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_open`); returns ``path`` as a Path."""
    with atomic_open(path, "w", newline="") as f:
        f.write(text)
    return Path(path)

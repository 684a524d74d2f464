"""Download and unpack bAbI v1.2 (``memtasks data babi --dest DIR``).

The archive ``tasks_1-20_v1-2.tar.gz`` (Facebook AI Research, CC BY 3.0) is
fetched from its Facebook public-files path, checked against its expected size
and SHA-256, and unpacked into ``DEST/tasks_1-20_v1-2``.

Provenance of the expected values: size 15,719,851 bytes and SHA-256
``0364ebde...98898`` are the ones recorded for this archive (then served from
the original ``thespermwhale.com/jaseweston/babi`` address, now gone) in the
Hugging Face ``datasets`` loader ``babi_qa`` (``dataset_infos.json``). They could
not be re-checked against the Facebook path from here (no network); if that
server ever serves different bytes, the download stops with a
:class:`ChecksumError` naming both digests, and ``--sha256 none`` accepts the
file on its size alone.

Unpacking is safe and atomic: every member is checked first (no absolute
paths, no ``..``, no links pointing outside the folder, no devices), the
archive is unpacked into a temporary folder inside ``DEST``, and only a
complete ``tasks_1-20_v1-2`` folder is renamed into place.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import posixpath
import shlex
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from memtasks.babi.data import ARCHIVE_ROOT, ENV_VAR

__all__ = [
    "BABI_SHA256",
    "BABI_SIZE",
    "BABI_URL",
    "ChecksumError",
    "UnsafeArchiveError",
    "cli",
    "download_babi",
    "safe_extract",
]

BABI_URL = "https://dl.fbaipublicfiles.com/babi/tasks_1-20_v1-2.tar.gz"
BABI_SIZE = 15_719_851
BABI_SHA256 = "0364ebde659f14d11bc21744516c5ec49d3d06cb692733f66680771244998898"
_CHUNK = 1 << 20


class ChecksumError(ValueError):
    """The downloaded file has the wrong size or SHA-256."""


class UnsafeArchiveError(ValueError):
    """The archive has a member that would land outside the destination (or is not a plain file/folder/link)."""


def download_babi(
    dest: str | os.PathLike[str],
    url: str = BABI_URL,
    sha256: str | None = BABI_SHA256,
    size: int | None = BABI_SIZE,
    source: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> Path:
    """Download, verify and unpack bAbI v1.2 into ``dest/tasks_1-20_v1-2``.

    Args:
        dest: Folder to unpack into (created if needed).
        url: Where to fetch the archive (``https://``, ``http://`` or ``file://``).
        sha256: Expected SHA-256 (hex); ``None`` skips the check.
        size: Expected size in bytes; ``None`` skips the check.
        source: A local copy of the archive to use instead of downloading
            (verified just the same).
        force: Replace an existing ``dest/tasks_1-20_v1-2``; without it an existing
            folder is returned as it is and nothing is downloaded.

    Returns:
        The ``tasks_1-20_v1-2`` folder, the value for ``$MEMTASKS_BABI_DIR``.

    Raises:
        ChecksumError: Size or SHA-256 differ from the expected ones.
        UnsafeArchiveError: A member would escape ``dest``.
        ValueError: ``sha256`` or ``size`` is malformed, or the archive lacks ``tasks_1-20_v1-2/``.
        OSError: The download or a file operation failed (``urllib.error.URLError`` included).
    """
    if sha256 is not None:
        if not isinstance(sha256, str) or len(sha256) != 64 or any(c not in "0123456789abcdefABCDEF" for c in sha256):
            raise ValueError(f"sha256 must be 64 hexadecimal digits or None, got {sha256!r}")
        sha256 = sha256.lower()
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"size must be a positive number of bytes or None, got {size!r}")
    dest = Path(dest).expanduser()
    target = dest / ARCHIVE_ROOT
    if target.exists() and not force:
        return target
    dest.mkdir(parents=True, exist_ok=True)

    # Everything happens in a scratch folder inside dest, so the final rename stays on
    # one file system (atomic) and a failure leaves dest as it was.
    label = str(source) if source is not None else url
    work = Path(tempfile.mkdtemp(prefix=f".{ARCHIVE_ROOT}.partial-", dir=dest))
    try:
        archive = work / "archive.tar.gz"
        # urlopen also serves file:// addresses, which the offline tests use
        opened = Path(source).open("rb") if source is not None else urllib.request.urlopen(url)  # noqa: S310
        with opened as stream:
            _copy_verified(stream, archive, label, sha256, size)
        unpacked = work / "unpacked"
        unpacked.mkdir()
        try:
            safe_extract(archive, unpacked)
        except tarfile.TarError as exc:  # a corrupt file that no checksum caught (sha256=None)
            raise ValueError(f"{label}: cannot unpack the archive ({exc})") from exc
        if not (unpacked / ARCHIVE_ROOT).is_dir():
            raise ValueError(f"{label}: the archive has no {ARCHIVE_ROOT}/ folder; is it bAbI v1.2?")
        previous = work / "previous"
        if target.exists():  # force: move the old copy aside, delete it only once the new one is in place
            os.replace(target, previous)
        try:
            os.replace(unpacked / ARCHIVE_ROOT, target)
        except OSError:
            if previous.exists():
                os.replace(previous, target)
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def _copy_verified(stream: _Readable, out: Path, label: str, sha256: str | None, size: int | None) -> None:
    digest = hashlib.sha256()
    written = 0
    with open(out, "wb") as f:
        while chunk := stream.read(_CHUNK):
            written += len(chunk)
            if size is not None and written > size:  # stop early rather than fill the disk
                raise ChecksumError(f"{label}: more than the expected {size} bytes; not the bAbI v1.2 archive?")
            digest.update(chunk)
            f.write(chunk)
    if size is not None and written != size:
        raise ChecksumError(f"{label}: got {written} bytes, expected {size}")
    if sha256 is not None and digest.hexdigest() != sha256:
        raise ChecksumError(f"{label}: SHA-256 is {digest.hexdigest()}, expected {sha256}")


def safe_extract(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Unpack a tar archive into ``dest`` after checking every member.

    Raises:
        UnsafeArchiveError: A member has an absolute path or ``..``, is a link whose
            target leaves ``dest``, or is a device, FIFO or other special file.
    """
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            _check_member(member)
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: the standard library checks again
            tar.extractall(dest, members=members, filter="data")
        else:  # pragma: no cover - older Pythons rely on the checks above
            tar.extractall(dest, members=members)


def _check_member(member: tarfile.TarInfo) -> None:
    name = member.name
    if not _inside(name):
        raise UnsafeArchiveError(f"refusing archive member {name!r}: absolute path or '..' would leave the destination")
    if member.issym() or member.islnk():
        # a symlink's target is relative to its own folder, a hard link's to the archive root
        base = posixpath.dirname(name) if member.issym() else ""
        if not _inside(posixpath.join(base, member.linkname)):
            raise UnsafeArchiveError(
                f"refusing archive member {name!r}: link to {member.linkname!r} points outside the destination"
            )
    elif not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(f"refusing archive member {name!r}: not a regular file, folder or link")


def _inside(path: str) -> bool:
    """Whether a relative archive path stays inside its root once normalised."""
    if not path or path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":"):
        return False
    parts = path.replace("\\", "/").split("/")
    depth = 0
    for part in parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return False
        elif part not in ("", "."):
            depth += 1
    return True


# -- command line --------------------------------------------------------------------------------------


def cli(argv: Sequence[str] | None = None) -> int:
    """``memtasks data babi --dest DIR [--url URL] [--sha256 HEX|none] [--size N|none] [--source FILE] [--force]``."""
    parser = argparse.ArgumentParser(
        prog="memtasks data",
        description="Download a dataset. Only 'babi' (bAbI v1.2, CC BY 3.0) for now.",
    )
    parser.add_argument("dataset", choices=["babi"], help="which dataset")
    parser.add_argument("--dest", required=True, help="folder to unpack into; the data lands in DEST/" + ARCHIVE_ROOT)
    parser.add_argument("--url", default=BABI_URL, help=f"archive address (default {BABI_URL})")
    parser.add_argument("--sha256", default=BABI_SHA256, help="expected SHA-256, or 'none' to skip the check")
    parser.add_argument("--size", default=str(BABI_SIZE), help="expected size in bytes, or 'none' to skip the check")
    parser.add_argument("--source", default=None, help="use this local copy of the archive instead of downloading")
    parser.add_argument("--force", action="store_true", help="replace an existing copy")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))

    sha256 = None if args.sha256.lower() == "none" else args.sha256
    if args.size.lower() == "none":
        size = None
    elif args.size.isdigit():
        size = int(args.size)
    else:
        parser.error(f"--size must be a number of bytes or 'none', got {args.size!r}")
    try:
        root = download_babi(args.dest, url=args.url, sha256=sha256, size=size, source=args.source, force=args.force)
    except (OSError, ValueError) as exc:  # download, checksum and archive problems: one clear line
        print(f"memtasks data babi: {exc}", file=sys.stderr)
        return 1
    root = root.resolve()
    print(f"bAbI v1.2 is in {root}", file=sys.stderr)
    print(f"export {ENV_VAR}={shlex.quote(str(root))}")
    return 0

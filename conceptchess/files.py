"""Writing files and folders without ever leaving a half-written one: write beside the target, then rename.

>>> with atomic_open("out/report.csv", "w", newline="") as f:     # doctest: +SKIP
...     f.write("id,score\\n")
>>> with atomic_folder("out/dataset") as tmp:                      # doctest: +SKIP
...     (tmp / "positions.jsonl").write_text("...")
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conceptchess.errors import ConceptChessError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix), renamed onto it if the block succeeds, removed if not."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it private; the result is an ordinary file
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs):
    """``open`` on a temporary file that replaces ``path`` only once closed without error."""
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


@contextmanager
def atomic_folder(path: str | os.PathLike, *, replace: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``path``, renamed onto it if the block succeeds, removed if not.

    An existing ``path`` is removed first when ``replace`` is true; otherwise the rename replaces only
    an empty folder (``OSError`` for anything else).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes it private; the result is an ordinary folder
    try:
        yield tmp
        if replace and path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def resume_folder(work: str | os.PathLike, state: dict, refusal: str, state_file: str = "state.json") -> Path:
    """The work folder of a resumable job: created with ``state`` (JSON) when missing; when it exists, its
    recorded state must equal ``state`` (the same inputs and settings), else ``ConceptChessError(f"{work}: {refusal}")``."""
    work = Path(work)
    if work.exists():
        try:
            old = json.loads((work / state_file).read_text())
        except (OSError, json.JSONDecodeError):
            old = None
        if old != state:
            raise ConceptChessError(f"{work}: {refusal}")
    else:
        work.mkdir(parents=True)
        atomic_write_text(work / state_file, json.dumps(state, indent=2) + "\n")
    return work

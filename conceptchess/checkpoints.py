"""Checkpoint series on disk: network files, the ``.json`` sidecar beside each, steps, labels, the weakest checkpoint.

A checkpoint is a network file (``.pb.gz``, ``.onnx``, ``.onnx.gz``); ``conceptchess train`` writes
``{run}-step{step:06d}.pb.gz`` and beside it a sidecar ``{run}-step{step:06d}.json`` holding at least
``run``, ``step``, ``file`` and ``sha256``. A folder of checkpoints is a series; the project's own is
``engines/`` (:data:`DEFAULT_SERIES`). A checkpoint's step comes from its sidecar, else from the
training steps recorded in the weights, else from a ``step<N>`` in its file name.

>>> checkpoint_name("cc-6x32", 178)
'cc-6x32-step000178.pb.gz'
>>> sidecar_path("engines/cc-6x32-step000178.pb.gz").name, stem("maia-1100.onnx.gz")
('cc-6x32-step000178.json', 'maia-1100')
>>> run_and_step("engines/cc-6x32-step000178.pb.gz")      # doctest: +SKIP
('cc-6x32', 178)
>>> checkpoint_label("engines/cc-6x32-step000178.pb.gz")  # doctest: +SKIP
'cc-6x32@178'
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from conceptchess.files import atomic_write_bytes
from conceptchess.paths import ENGINES_DIR

NET_SUFFIXES = (".pb.gz", ".onnx", ".onnx.gz")
#: The project's own checkpoint series (trained by ``conceptchess train``, shipped with the project).
DEFAULT_SERIES = ENGINES_DIR
_SUFFIX = re.compile(r"(\.pb\.gz|\.onnx\.gz|\.onnx)$")
_STEP_IN_NAME = re.compile(r"step[-_]?(\d+)")


def is_network_file(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.is_file() and any(p.name.endswith(s) for s in NET_SUFFIXES)


def network_files(folder: str | os.PathLike) -> list[Path]:
    """The network files of a folder, by name."""
    return sorted(p for p in Path(folder).iterdir() if is_network_file(p))


def stem(path: str | os.PathLike) -> str:
    """The file name without its network suffix (``maia-1100.onnx.gz`` → ``maia-1100``)."""
    return _SUFFIX.sub("", Path(path).name)


def checkpoint_name(run: str, step: int) -> str:
    """The file name ``conceptchess train`` gives the checkpoint of ``run`` at ``step``."""
    return f"{run}-step{step:06d}.pb.gz"


# -- sidecars ---------------------------------------------------------------------------------------------
def sidecar_path(checkpoint: str | os.PathLike) -> Path:
    p = Path(checkpoint)
    return p.with_name(stem(p) + ".json")


def read_sidecar(checkpoint: str | os.PathLike) -> dict:
    """The sidecar of a checkpoint (run, step, sha256, …), or ``{}`` when it is missing or unreadable."""
    f = sidecar_path(checkpoint)
    if not f.exists():
        return {}
    try:
        meta = json.loads(f.read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def write_sidecar(checkpoint: str | os.PathLike, meta: dict) -> Path:
    """Write (atomically) the sidecar of a checkpoint; returns its path."""
    f = sidecar_path(checkpoint)
    atomic_write_bytes(f, (json.dumps(meta, indent=2) + "\n").encode())
    return f


def series_sidecars(folder: str | os.PathLike, run: str) -> list[tuple[int, Path, dict]]:
    """``(step, checkpoint file, sidecar)`` of every sidecar of ``run`` in ``folder`` whose step is an integer, by step."""
    folder = Path(folder)
    out = []
    for meta_file in folder.glob("*.json"):
        try:
            meta = json.loads(meta_file.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and meta.get("run") == run and isinstance(meta.get("step"), int):
            out.append((meta["step"], folder / str(meta.get("file", "")), meta))
    return sorted(out, key=lambda x: (x[0], x[1]))


# -- steps and labels -------------------------------------------------------------------------------------
def run_and_step(path: str | os.PathLike, training_steps: int | None = None) -> tuple[str | None, int | None]:
    """A checkpoint's ``(run, step)``: from its sidecar, else ``training_steps`` (as recorded in the weights, if
    above 0), else a ``step<N>`` in its file name; None where unknown."""
    meta = read_sidecar(path)
    try:
        run, step = meta.get("run"), meta.get("step")
        step = int(step) if step is not None else None
    except (ValueError, TypeError):
        run = step = None
    if step is None and training_steps is not None and training_steps > 0:
        step = int(training_steps)
    if step is None:
        m = _STEP_IN_NAME.search(Path(path).name)
        if m:
            step = int(m.group(1))
    return run, step


def series_order_key(step: int | None, name: str) -> tuple[bool, int, str]:
    """Training order: by step, checkpoints without a step last, ties by file name."""
    return (step is None, step if step is not None else 0, name)


def step_label(run: str, step: int) -> str:
    """How a probe run labels a checkpoint of a series (``cc-6x32 step 178``)."""
    return f"{run} step {step}"


def checkpoint_label(path: str | os.PathLike) -> str:
    """``run@step`` from the checkpoint's sidecar (e.g. ``cc-6x32@178``), else the file name."""
    meta = read_sidecar(path)
    if meta.get("run") is not None and meta.get("step") is not None:
        return f"{meta['run']}@{meta['step']}"
    return Path(path).name


def weakest_checkpoint(network: str | os.PathLike) -> Path | None:
    """The first checkpoint after step 0 in the same series and folder as ``network`` (None if none).

    Step 0 is the random initialisation, a control rather than a weak player.
    """
    network = Path(network)
    run = read_sidecar(network).get("run")
    if run is None:
        return None
    later = [(step, f) for step, f, _ in series_sidecars(network.parent, run) if step > 0 and f.is_file()]
    return min(later)[1] if later else None

"""Provenance recorded with every result: content hashes and the versions of the software that made it.

>>> sha256_bytes(b"")[:12]
'e3b0c44298fc'
>>> sorted(software_versions("numpy"))
['conceptchess', 'numpy', 'python']
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from importlib import metadata

from conceptchess import __version__

_CHUNK = 1 << 20

# import name (as in sys.modules) → distribution name (as pip knows it)
_DISTRIBUTIONS = {"chess": "chess", "numpy": "numpy", "torch": "torch", "onnxruntime": "onnxruntime", "sklearn": "scikit-learn",
                  "scipy": "scipy", "sqlalchemy": "SQLAlchemy", "onnx": "onnx"}
_LABELS = {"chess": "python-chess", "sklearn": "scikit-learn"}


def sha256_bytes(data: bytes) -> str:
    """The sha256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_of(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _version_of(module: str) -> str | None:
    loaded = sys.modules.get(module)
    v = getattr(loaded, "__version__", None)
    if v:
        return str(v)
    try:
        return metadata.version(_DISTRIBUTIONS.get(module, module))
    except metadata.PackageNotFoundError:
        return None


def software_versions(*modules: str) -> dict[str, str]:
    """conceptchess's and Python's versions, plus those of the named packages (import names: ``"chess"``,
    ``"numpy"``, ``"torch"``, ``"onnxruntime"``, ``"sklearn"`` …; python-chess and scikit-learn are recorded
    under their distribution names). A package that is not installed is left out. Importing nothing itself,
    this never loads torch or onnxruntime just to record a version."""
    out = {"conceptchess": __version__}
    for m in modules:
        v = _version_of(m)
        if v is not None:
            out[_LABELS.get(m, m)] = v
    out["python"] = platform.python_version()
    return out

"""Open a network file of any supported kind and identify it.

Supported: lc0 ``.pb.gz`` weights (SE-ResNet / ResNet; built into our torch model and exported to
ONNX) and lc0's own ``leela2onnx`` exports (``.onnx`` or ``.onnx.gz``, any body; taps added in place).
A network is identified by the sha256 of its file.

>>> net = open_network("maia-1100.pb.gz")                  # doctest: +SKIP
>>> net.blocks, net.heads, net.sha256[:12]                 # doctest: +SKIP
(6, ['policy', 'wdl'], '...')
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from conceptchess.checkpoints import DEFAULT_SERIES
from conceptchess.errors import NetworkFormatError
from conceptchess.lc0.model import Lc0Net
from conceptchess.lc0.onnx_io import export_onnx, tap_lc0_onnx
from conceptchess.lc0.weights import NetSpec, parse_net, spec_and_state
from conceptchess.provenance import sha256_bytes
from conceptchess.taps import block_taps

ENV_DEFAULT_NET = "CONCEPTCHESS_NET"


@dataclass
class Network:
    path: Path
    sha256: str
    kind: str  # 'lc0-weights' | 'lc0-onnx'
    blocks: int
    heads: list[str]
    body: str  # 'resnet' | 'attention'
    spec: NetSpec | None = None
    state: dict | None = field(default=None, repr=False)
    _onnx: onnx.ModelProto | None = field(default=None, repr=False)
    training_steps: int | None = None

    @property
    def taps(self) -> list[str]:
        """The block taps its ONNX graph outputs (``input`` is not an output: see :func:`conceptchess.taps.network_taps`)."""
        return block_taps(self.blocks)

    @cached_property
    def onnx_model(self) -> onnx.ModelProto:
        """The ONNX model with the project's output names (exported on first use for .pb.gz files)."""
        if self._onnx is None:
            self._onnx = export_onnx(Lc0Net.from_state(self.spec, self.state))
        return self._onnx

    def torch_model(self):
        if self.spec is None:
            raise NetworkFormatError(f"{self.path}: only .pb.gz networks have a torch model; this one is {self.kind}")
        return Lc0Net.from_state(self.spec, self.state)

    def parameter_count(self) -> int:
        if self.state is not None:
            return int(sum(v.size for v in self.state.values()))
        floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16)
        return int(sum(math.prod(t.dims) for t in self.onnx_model.graph.initializer if t.data_type in floats))

    def describe(self) -> str:
        if self.spec is not None:
            return self.spec.describe()
        return f"{self.blocks} {'encoder layers' if self.body == 'attention' else 'blocks'} ({self.body}), heads {', '.join(self.heads)}"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NetworkFormatError(f"{path}: no such network file") from None
    except OSError as e:
        raise NetworkFormatError(f"{path}: cannot read ({e.strerror})") from None


def _is_onnx_name(path: Path) -> bool:
    return path.name.endswith(".onnx") or path.name.endswith(".onnx.gz")


def open_network(path: str | os.PathLike) -> Network:
    """Open and validate a network file; raises :class:`NetworkFormatError` with a one-line reason."""
    path = Path(path)
    if path.is_dir():
        raise NetworkFormatError(f"{path}: is a folder, not a network file")
    data = _read(path)
    sha = sha256_bytes(data)
    if _is_onnx_name(path):
        if path.name.endswith(".gz"):
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error) as e:
                raise NetworkFormatError(f"{path}: not a readable gzip file ({e})") from None
        try:
            model = onnx.load_from_string(data)
        except (DecodeError, RuntimeError, ValueError) as e:
            raise NetworkFormatError(f"{path}: not an ONNX model ({e})") from None
        if not model.graph.node:
            raise NetworkFormatError(f"{path}: not an ONNX model (empty graph)")
        tapped, info = tap_lc0_onnx(model, str(path))
        return Network(path, sha, "lc0-onnx", info.blocks, info.heads, info.body, _onnx=tapped)
    net = parse_net(data, str(path))
    spec, state = spec_and_state(net, str(path))
    heads = ["policy", "wdl" if spec.value == "wdl" else "value"] + (["mlh"] if spec.moves_left else [])
    steps = net.training_params.training_steps if net.HasField("training_params") else None
    return Network(path, sha, "lc0-weights", spec.blocks, heads, "resnet", spec, state, training_steps=steps)


def default_network() -> Path | None:
    """The network used when none is given: $CONCEPTCHESS_NET, else the last checkpoint in engines/."""
    env = os.environ.get(ENV_DEFAULT_NET)
    if env:
        return Path(env)
    nets = sorted(DEFAULT_SERIES.glob("*.pb.gz"))
    return nets[-1] if nets else None

"""Read and write lc0 ``.pb.gz`` weights files (SE-ResNet and classical ResNet bodies).

Reading gives a :class:`NetSpec` (what the network is) and a state dict of float32 numpy arrays with
batch norm folded into the convolutions, named like the parameters of
:class:`conceptchess.lc0.model.Lc0Net`. Writing takes the same pair back to a file lc0 loads.

>>> spec, state = read_weights("maia-1100.pb.gz")          # doctest: +SKIP
>>> spec.blocks, spec.filters, spec.value                  # doctest: +SKIP
(6, 64, 'wdl')
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from google.protobuf.message import DecodeError

from conceptchess.errors import NetworkFormatError
from conceptchess.files import atomic_write_bytes
from conceptchess.lc0 import proto
from conceptchess.provenance import sha256_bytes

BN_EPSILON = 1e-5
LEELA2ONNX_HINT = "convert it with lc0's `leela2onnx` and load the .onnx file instead"


@dataclass(frozen=True)
class NetSpec:
    """The architecture of an lc0 SE-ResNet / ResNet: everything needed to build the torch model."""

    blocks: int
    filters: int
    se_channels: int  # 0: no squeeze-excitation (classical ResNet)
    policy: str  # 'convolution' | 'classical'
    policy_channels: int  # channels of the classical policy conv (0 for convolution policy)
    value: str  # 'wdl' | 'classical'
    value_channels: int
    value_hidden: int
    moves_left: bool
    mlh_channels: int = 0
    mlh_hidden: int = 0
    activation: str = "relu"  # 'relu' | 'mish'
    input_format: str = "INPUT_CLASSICAL_112_PLANE"

    def describe(self) -> str:
        se = f"SE({self.se_channels})" if self.se_channels else "no SE"
        return f"{self.blocks}x{self.filters} {se}, {self.policy} policy, {self.value} value, mlh={'yes' if self.moves_left else 'no'}, {self.activation}"

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------- reading

def _decode_layer(layer, default_encoding: int, what: str) -> np.ndarray:
    raw = layer.params
    enc = layer.encoding or default_encoding or 1
    if enc == 1:  # LINEAR16
        if len(raw) % 2:
            raise NetworkFormatError(f"layer {what}: odd byte count {len(raw)} for LINEAR16")
        q = np.frombuffer(raw, dtype="<u2").astype(np.float32)
        return (layer.min_val + (layer.max_val - layer.min_val) * (q / 65535.0)).astype(np.float32)
    if enc == 2:  # FLOAT16
        return np.frombuffer(raw, dtype="<f2").astype(np.float32)
    if enc == 3:  # BFLOAT16
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    if enc == 4:  # FLOAT32
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)
    raise NetworkFormatError(f"layer {what}: unknown weight encoding {enc}")


class _Reader:
    def __init__(self, default_encoding: int):
        self.enc = default_encoding

    def layer(self, layer, what: str, size: int | None = None) -> np.ndarray:
        a = _decode_layer(layer, self.enc, what)
        if size is not None and a.size != size:
            raise NetworkFormatError(f"layer {what} has {a.size} values, expected {size} (truncated or forged file?)")
        return a

    def conv(self, block, what: str, cin: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Folded (weight [out, in, k, k], bias [out]) of a ConvBlock."""
        n_w = len(block.weights.params) // 2 if (block.weights.encoding or self.enc) in (1, 2, 3) else len(block.weights.params) // 4
        if n_w == 0 or n_w % (cin * k * k):
            raise NetworkFormatError(f"conv {what}: {n_w} weights do not fit {cin} inputs of {k}x{k}")
        cout = n_w // (cin * k * k)
        w = self.layer(block.weights, f"{what}.weights", cout * cin * k * k).reshape(cout, cin, k, k)
        bias = self.layer(block.biases, f"{what}.biases", cout) if block.HasField("biases") else np.zeros(cout, np.float32)
        if block.HasField("bn_means"):
            mean = self.layer(block.bn_means, f"{what}.bn_means", cout)
            var = self.layer(block.bn_stddivs, f"{what}.bn_stddivs", cout)
            gamma = self.layer(block.bn_gammas, f"{what}.bn_gammas", cout) if block.HasField("bn_gammas") else np.ones(cout, np.float32)
            beta = self.layer(block.bn_betas, f"{what}.bn_betas", cout) if block.HasField("bn_betas") else np.zeros(cout, np.float32)
            scale = (gamma / np.sqrt(var + np.float32(BN_EPSILON))).astype(np.float32)
            w = w * scale[:, None, None, None]
            bias = (scale * (bias - mean) + beta).astype(np.float32)
        return w.astype(np.float32), bias.astype(np.float32)


def parse_net(data: bytes, name: str = "weights") -> "proto.Net":
    """Decompress and parse a ``.pb.gz`` payload, validating the magic number."""
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise NetworkFormatError(f"{name}: not a readable gzip file ({e}); is it a truncated .pb.gz?") from None
    net = proto.Net()
    try:
        net.ParseFromString(raw)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise NetworkFormatError(f"{name}: not an lc0 protobuf network ({e})") from None
    if net.magic != proto.WEIGHTS_MAGIC:
        raise NetworkFormatError(f"{name}: wrong magic {net.magic:#x} (an lc0 network starts with {proto.WEIGHTS_MAGIC:#x})")
    return net


def spec_and_state(net, name: str = "weights") -> tuple[NetSpec, dict[str, np.ndarray]]:
    """Validate the format of a parsed ``Net`` and decode its layers into a folded state dict."""
    fmt = net.format.network_format
    has_fmt = net.format.HasField("network_format")
    input_fmt = proto.enum_name(fmt, "input") if has_fmt and fmt.input else "INPUT_CLASSICAL_112_PLANE"
    structure = proto.enum_name(fmt, "network") if has_fmt and fmt.network else "NETWORK_CLASSICAL"
    if net.HasField("onnx_model"):
        raise NetworkFormatError(f"{name}: NETWORK_ONNX (an ONNX model inside a .pb.gz) is not supported; extract the model and load it as .onnx")
    if structure not in ("NETWORK_CLASSICAL", "NETWORK_SE", "NETWORK_CLASSICAL_WITH_HEADFORMAT", "NETWORK_SE_WITH_HEADFORMAT"):
        raise NetworkFormatError(f"{name}: network format {structure} is not supported by the .pb.gz reader; {LEELA2ONNX_HINT}")
    if input_fmt != "INPUT_CLASSICAL_112_PLANE":
        raise NetworkFormatError(f"{name}: input format {input_fmt} is not supported (only INPUT_CLASSICAL_112_PLANE); {LEELA2ONNX_HINT}")
    headformat = structure.endswith("WITH_HEADFORMAT")
    policy = proto.enum_name(fmt, "policy") if headformat else "POLICY_CLASSICAL"
    value = proto.enum_name(fmt, "value") if headformat else "VALUE_CLASSICAL"
    if policy not in ("POLICY_CLASSICAL", "POLICY_CONVOLUTION"):
        raise NetworkFormatError(f"{name}: policy format {policy} is not supported; {LEELA2ONNX_HINT}")
    if value not in ("VALUE_CLASSICAL", "VALUE_WDL"):
        raise NetworkFormatError(f"{name}: value format {value} is not supported; {LEELA2ONNX_HINT}")
    activation = "mish" if has_fmt and fmt.default_activation == 1 else "relu"
    w = net.weights
    if not w.HasField("input") or len(w.residual) == 0:
        raise NetworkFormatError(f"{name}: no input convolution or residual tower (empty or truncated network)")
    rd = _Reader(net.format.weights_encoding)
    st: dict[str, np.ndarray] = {}
    st["input.weight"], st["input.bias"] = rd.conv(w.input, "input", 112, 3)
    c = st["input.bias"].size
    se_channels = 0
    for i, res in enumerate(w.residual):
        for j, conv in ((1, res.conv1), (2, res.conv2)):
            st[f"blocks.{i}.conv{j}.weight"], st[f"blocks.{i}.conv{j}.bias"] = rd.conv(conv, f"residual[{i}].conv{j}", c, 3)
            if st[f"blocks.{i}.conv{j}.bias"].size != c:
                raise NetworkFormatError(f"{name}: residual[{i}].conv{j} has {st[f'blocks.{i}.conv{j}.bias'].size} filters, expected {c}")
        has_se = res.HasField("se")
        if i == 0:
            se_channels = rd.layer(res.se.b1, f"residual[{i}].se.b1").size if has_se else 0
        if has_se != bool(se_channels):
            raise NetworkFormatError(f"{name}: residual[{i}] differs from block 0 in having an SE unit")
        if has_se:
            s = se_channels
            st[f"blocks.{i}.se.fc1.weight"] = rd.layer(res.se.w1, f"residual[{i}].se.w1", s * c).reshape(s, c)
            st[f"blocks.{i}.se.fc1.bias"] = rd.layer(res.se.b1, f"residual[{i}].se.b1", s)
            st[f"blocks.{i}.se.fc2.weight"] = rd.layer(res.se.w2, f"residual[{i}].se.w2", 2 * c * s).reshape(2 * c, s)
            st[f"blocks.{i}.se.fc2.bias"] = rd.layer(res.se.b2, f"residual[{i}].se.b2", 2 * c)
    if policy == "POLICY_CONVOLUTION":
        st["policy1.weight"], st["policy1.bias"] = rd.conv(w.policy1, "policy1", c, 3)
        st["policy.weight"], st["policy.bias"] = rd.conv(w.policy, "policy", c, 3)
        if st["policy.bias"].size != 80:
            raise NetworkFormatError(f"{name}: convolution policy has {st['policy.bias'].size} planes, expected 80")
        policy_channels = 0
    else:
        st["policy.weight"], st["policy.bias"] = rd.conv(w.policy, "policy", c, 1)
        policy_channels = st["policy.bias"].size
        st["ip_pol.weight"] = rd.layer(w.ip_pol_w, "ip_pol_w", 1858 * policy_channels * 64).reshape(1858, policy_channels * 64)
        st["ip_pol.bias"] = rd.layer(w.ip_pol_b, "ip_pol_b", 1858)
    st["value_conv.weight"], st["value_conv.bias"] = rd.conv(w.value, "value", c, 1)
    vc = st["value_conv.bias"].size
    st["ip1_val.bias"] = rd.layer(w.ip1_val_b, "ip1_val_b")
    vh = st["ip1_val.bias"].size
    st["ip1_val.weight"] = rd.layer(w.ip1_val_w, "ip1_val_w", vh * vc * 64).reshape(vh, vc * 64)
    n_out = 3 if value == "VALUE_WDL" else 1
    st["ip2_val.weight"] = rd.layer(w.ip2_val_w, "ip2_val_w", n_out * vh).reshape(n_out, vh)
    st["ip2_val.bias"] = rd.layer(w.ip2_val_b, "ip2_val_b", n_out)
    mlh = headformat and fmt.moves_left == 1 and w.HasField("moves_left")
    mc = mh = 0
    if mlh:
        st["mlh_conv.weight"], st["mlh_conv.bias"] = rd.conv(w.moves_left, "moves_left", c, 1)
        mc = st["mlh_conv.bias"].size
        st["ip1_mov.bias"] = rd.layer(w.ip1_mov_b, "ip1_mov_b")
        mh = st["ip1_mov.bias"].size
        st["ip1_mov.weight"] = rd.layer(w.ip1_mov_w, "ip1_mov_w", mh * mc * 64).reshape(mh, mc * 64)
        st["ip2_mov.weight"] = rd.layer(w.ip2_mov_w, "ip2_mov_w", mh).reshape(1, mh)
        st["ip2_mov.bias"] = rd.layer(w.ip2_mov_b, "ip2_mov_b", 1)
    spec = NetSpec(
        blocks=len(w.residual), filters=c, se_channels=se_channels,
        policy="convolution" if policy == "POLICY_CONVOLUTION" else "classical", policy_channels=policy_channels,
        value="wdl" if value == "VALUE_WDL" else "classical", value_channels=vc, value_hidden=vh,
        moves_left=mlh, mlh_channels=mc, mlh_hidden=mh, activation=activation, input_format=input_fmt,
    )
    return spec, st


def read_weights(path: str | os.PathLike) -> tuple[NetSpec, dict[str, np.ndarray]]:
    """Read an lc0 ``.pb.gz`` file: its :class:`NetSpec` and folded float32 state dict."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise NetworkFormatError(f"{path}: cannot read ({e.strerror})") from None
    return spec_and_state(parse_net(data, str(path)), str(path))


# ---------------------------------------------------------------------------------------- writing

_ENCODINGS = {"linear16": 1, "float16": 2, "bfloat16": 3, "float32": 4}


def _encode_layer(layer, values: np.ndarray, encoding: str) -> None:
    v = np.ascontiguousarray(values, dtype=np.float32).ravel()
    if encoding == "linear16":
        lo, hi = float(v.min()), float(v.max())
        q = np.zeros(v.shape, np.uint16) if hi == lo else np.round((v - lo) / (hi - lo) * 65535.0).astype(np.uint16)
        layer.min_val, layer.max_val = lo, hi
        layer.params = q.astype("<u2").tobytes()
    elif encoding == "float16":
        layer.params = v.astype("<f2").tobytes()
    elif encoding == "bfloat16":
        u = v.view(np.uint32).astype(np.uint64)
        layer.params = (((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")).tobytes()  # round to nearest even
    else:
        layer.params = v.astype("<f4").tobytes()
    layer.encoding = _ENCODINGS[encoding]


def _write_conv(block, w: np.ndarray, b: np.ndarray, encoding: str) -> None:
    """A folded conv as lc0 stores a batch-normed one (identity BN whose beta carries the bias)."""
    _encode_layer(block.weights, w, encoding)
    _encode_layer(block.bn_means, np.zeros_like(b), encoding)
    _encode_layer(block.bn_stddivs, np.full_like(b, 1.0 - BN_EPSILON), encoding)
    _encode_layer(block.bn_gammas, np.ones_like(b), encoding)
    _encode_layer(block.bn_betas, b, encoding)


def build_net(spec: NetSpec, state: dict[str, np.ndarray], encoding: str = "linear16",
              training_steps: int | None = None, license: str | None = None) -> "proto.Net":
    if encoding not in _ENCODINGS:
        raise NetworkFormatError(f"unknown weight encoding {encoding!r}; choose one of {', '.join(_ENCODINGS)}")
    st = {k: np.asarray(v, dtype=np.float32) for k, v in state.items()}
    net = proto.Net(magic=proto.WEIGHTS_MAGIC)
    if license:
        net.license = license
    # Per-layer encodings other than LINEAR16 need lc0 >= 0.31.
    net.min_version.major, net.min_version.minor = 0, (21 if encoding == "linear16" else 31)
    net.min_version.patch = 0
    net.format.weights_encoding = 1
    nf = net.format.network_format
    nf.input = 1
    nf.output = 2 if spec.value == "wdl" else 1
    nf.network = 4 if spec.se_channels else 3
    nf.policy = 2 if spec.policy == "convolution" else 1
    nf.value = 2 if spec.value == "wdl" else 1
    nf.moves_left = 1 if spec.moves_left else 0
    nf.default_activation = 1 if spec.activation == "mish" else 0
    if training_steps is not None:
        net.training_params.training_steps = int(training_steps)
    w = net.weights
    _write_conv(w.input, st["input.weight"], st["input.bias"], encoding)
    for i in range(spec.blocks):
        res = w.residual.add()
        _write_conv(res.conv1, st[f"blocks.{i}.conv1.weight"], st[f"blocks.{i}.conv1.bias"], encoding)
        _write_conv(res.conv2, st[f"blocks.{i}.conv2.weight"], st[f"blocks.{i}.conv2.bias"], encoding)
        if spec.se_channels:
            for name, key in (("w1", "fc1.weight"), ("b1", "fc1.bias"), ("w2", "fc2.weight"), ("b2", "fc2.bias")):
                _encode_layer(getattr(res.se, name), st[f"blocks.{i}.se.{key}"], encoding)
    if spec.policy == "convolution":
        _write_conv(w.policy1, st["policy1.weight"], st["policy1.bias"], encoding)
        _encode_layer(w.policy.weights, st["policy.weight"], encoding)  # lc0 keeps this one un-normed
        _encode_layer(w.policy.biases, st["policy.bias"], encoding)
    else:
        _write_conv(w.policy, st["policy.weight"], st["policy.bias"], encoding)
        _encode_layer(w.ip_pol_w, st["ip_pol.weight"], encoding)
        _encode_layer(w.ip_pol_b, st["ip_pol.bias"], encoding)
    _write_conv(w.value, st["value_conv.weight"], st["value_conv.bias"], encoding)
    for name, key in (("ip1_val_w", "ip1_val.weight"), ("ip1_val_b", "ip1_val.bias"),
                      ("ip2_val_w", "ip2_val.weight"), ("ip2_val_b", "ip2_val.bias")):
        _encode_layer(getattr(w, name), st[key], encoding)
    if spec.moves_left:
        _write_conv(w.moves_left, st["mlh_conv.weight"], st["mlh_conv.bias"], encoding)
        for name, key in (("ip1_mov_w", "ip1_mov.weight"), ("ip1_mov_b", "ip1_mov.bias"),
                          ("ip2_mov_w", "ip2_mov.weight"), ("ip2_mov_b", "ip2_mov.bias")):
            _encode_layer(getattr(w, name), st[key], encoding)
    return net


def write_weights(path: str | os.PathLike, spec: NetSpec, state: dict[str, np.ndarray], encoding: str = "linear16",
                  training_steps: int | None = None, license: str | None = None) -> str:
    """Write an lc0 ``.pb.gz`` file (atomically); returns its sha256."""
    net = build_net(spec, state, encoding, training_steps, license)
    data = gzip.compress(net.SerializeToString(), mtime=0)
    atomic_write_bytes(path, data)
    return sha256_bytes(data)

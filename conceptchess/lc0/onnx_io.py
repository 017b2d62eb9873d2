"""ONNX in and out: export our torch model with a tap per block; give lc0's own exports the same taps.

Both paths produce an ONNX model whose single input is the [B, 112, 8, 8] float32 planes and whose
outputs use the project's names: ``policy`` (raw logits), ``wdl`` or ``value``, ``mlh`` when present,
and ``block0`` … ``block{N-1}``.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field

import onnx
import torch
from onnx import helper

from conceptchess.errors import NetworkFormatError
from conceptchess.lc0.model import Lc0Net
from conceptchess.taps import block, is_block

OPSET = 17


class _Export(torch.nn.Module):
    def __init__(self, net: Lc0Net):
        super().__init__()
        self.net = net

    def forward(self, planes):
        out = self.net(planes)
        return tuple(out[n] for n in self.net.output_names)


def export_onnx(net: Lc0Net) -> onnx.ModelProto:
    """Export an :class:`Lc0Net` to an ONNX model (dynamic batch) with every block as an output."""
    names = net.output_names
    buf = io.BytesIO()
    # The TorchScript exporter is deprecated in favour of torch.export, but gives plain, stable node
    # names and needs no onnxscript optimiser pass; its warnings say nothing about this model.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            _Export(net.eval()), (torch.zeros(1, 112, 8, 8),), buf, input_names=["planes"], output_names=names,
            dynamic_axes={"planes": {0: "batch"}, **{n: {0: "batch"} for n in names}},
            opset_version=OPSET, dynamo=False,
        )
    model = onnx.load_from_string(buf.getvalue())
    model.producer_name = "conceptchess"
    return model


@dataclass
class OnnxNetInfo:
    """What an lc0 ONNX network exposes once tapped."""

    source: str  # 'leela2onnx' or 'conceptchess'
    body: str  # 'resnet' | 'attention'
    blocks: int
    heads: list[str] = field(default_factory=list)
    input_name: str = "planes"


_LC0_OUTPUTS = {"/output/policy": "policy", "/output/wdl": "wdl", "/output/value": "value", "/output/mlh": "mlh"}


def _block_outputs(graph: onnx.GraphProto) -> tuple[str, list[str]]:
    """Each residual block's (or encoder layer's) output tensor in a leela2onnx graph."""
    produced = {}
    for node in graph.node:
        for out in node.output:
            produced[out] = node
    res = {}
    for node in graph.node:
        m = re.fullmatch(r"/block(\d+)/conv2/relu", node.name)
        if m:
            res[int(m.group(1))] = node.output[0]
    if res:
        return "resnet", [res[i] for i in range(len(res))] if sorted(res) == list(range(len(res))) else _gap(res)
    # Attention bodies: leela2onnx names every node of encoder layer i "/encoder{i}/..."; the layer's
    # output is the last such node in graph order (its final layer norm).
    enc: dict[int, str] = {}
    for node in graph.node:
        m = re.match(r"/encoder(\d+)/", node.name)
        if m and node.output:
            enc[int(m.group(1))] = node.output[0]
    if enc:
        return "attention", [enc[i] for i in range(len(enc))] if sorted(enc) == list(range(len(enc))) else _gap(enc)
    return "unknown", []


def _gap(found: dict[int, str]):
    raise NetworkFormatError(f"block taps are not numbered 0..N-1 (found {sorted(found)})")


def tap_lc0_onnx(model: onnx.ModelProto, name: str = "model") -> tuple[onnx.ModelProto, OnnxNetInfo]:
    """Rename an lc0 ONNX model's outputs to the project's names and add a ``block{i}`` tap per block.

    Only Identity nodes and graph outputs are added, so every original result is unchanged.
    """
    g = model.graph
    if model.producer_name == "conceptchess":
        heads = [o.name for o in g.output if not is_block(o.name)]
        blocks = sum(1 for o in g.output if is_block(o.name))
        return model, OnnxNetInfo("conceptchess", "resnet", blocks, heads, g.input[0].name)
    outs = {o.name for o in g.output}
    inputs = [i.name for i in g.input if i.name not in {t.name for t in g.initializer}]
    if inputs != ["/input/planes"] or "/output/policy" not in outs:
        raise NetworkFormatError(
            f"{name}: not an lc0 network export (expected input /input/planes and output /output/policy; "
            f"found inputs {inputs} and outputs {sorted(outs)})")
    body, block_tensors = _block_outputs(g)
    if not block_tensors:
        raise NetworkFormatError(f"{name}: cannot find the residual blocks or encoder layers in this lc0 ONNX graph")
    new = onnx.ModelProto()
    new.CopyFrom(model)
    ng = new.graph
    heads = []
    for lc0_name, ours in _LC0_OUTPUTS.items():
        if lc0_name in outs:
            ng.node.append(helper.make_node("Identity", [lc0_name], [ours], name=f"/tap/{ours}"))
            ng.output.append(helper.make_tensor_value_info(ours, onnx.TensorProto.FLOAT, None))
            heads.append(ours)
    for i, t in enumerate(block_tensors):
        ng.node.append(helper.make_node("Identity", [t], [block(i)], name=f"/tap/{block(i)}"))
        ng.output.append(helper.make_tensor_value_info(block(i), onnx.TensorProto.FLOAT, None))
    return new, OnnxNetInfo("leela2onnx", body, len(block_tensors), heads, "/input/planes")

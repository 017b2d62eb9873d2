"""Tap names: one definition of ``input`` / ``block{i}``, their order, parsing and validation."""

from __future__ import annotations

import pytest
import torch

from conceptchess import taps
from conceptchess.errors import ConceptChessError
from conceptchess.lc0.trainable import TrainableLc0Net
from conceptchess.lc0.weights import NetSpec, write_weights
from conceptchess.networks import open_network
from conceptchess.probing.sources import net_info


def test_names_and_order():
    assert taps.network_taps(3) == ["input", "block0", "block1", "block2"]
    assert taps.network_taps(2, input=False) == taps.block_taps(2) == ["block0", "block1"]
    assert [taps.block_index(t) for t in ("block0", "block17", "input", "blockx", "block1a", "policy")] == [0, 17, None, None, None, None]
    assert taps.order(["policy", "block10", "block2", "input", "block0"]) == ["input", "block0", "block2", "block10", "policy"]


def test_parse_and_check():
    assert taps.parse(None) is None
    assert taps.parse(" input, block3,,block3 ") == ["input", "block3"]  # a repeat is dropped where it is harmless
    assert taps.parse(["block1", " input"]) == ["block1", "input"]
    with pytest.raises(ConceptChessError, match="tap 'block3' is given twice"):
        taps.parse("block3,input,block3", duplicates="refuse")
    with pytest.raises(ConceptChessError, match="no taps given"):
        taps.parse(" , ")
    taps.check(["input", "block1"], taps.network_taps(2), "network n.pb.gz")
    with pytest.raises(ConceptChessError, match=r"tap 'block7' is not in network n.pb.gz \(taps: input, block0, block1\)"):
        taps.check(["block0", "block7"], taps.network_taps(2), "network n.pb.gz")


def test_networks_and_probes_use_these_names(tmp_path):
    spec = NetSpec(blocks=2, filters=8, se_channels=4, policy="convolution", policy_channels=0, value="wdl", value_channels=4,
                   value_hidden=16, moves_left=False)
    torch.manual_seed(0)
    path = tmp_path / "n.pb.gz"
    write_weights(path, spec, TrainableLc0Net(spec).folded_state())
    net = open_network(path)
    assert net.taps == taps.network_taps(2, input=False)  # what the ONNX graph outputs
    assert net_info(path).taps == taps.network_taps(2)  # what a probe can read
    assert [o.name for o in net.onnx_model.graph.output if taps.is_block(o.name)] == net.taps

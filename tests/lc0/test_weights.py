"""lc0 .pb.gz reading, writing and refusing."""

import gzip

import numpy as np
import pytest
import torch

from conceptchess.errors import NetworkFormatError
from conceptchess.lc0 import proto
from conceptchess.lc0.model import Lc0Net
from conceptchess.lc0.weights import NetSpec, build_net, parse_net, read_weights, spec_and_state, write_weights
from conceptchess.networks import open_network


def test_maia_spec(maia1100):
    spec, state = read_weights(maia1100)
    assert (spec.blocks, spec.filters, spec.se_channels) == (6, 64, 8)
    assert (spec.policy, spec.value, spec.moves_left, spec.activation) == ("convolution", "wdl", False, "relu")
    assert state["input.weight"].shape == (64, 112, 3, 3)
    assert state["policy.weight"].shape == (80, 64, 3, 3)
    assert state["ip2_val.weight"].shape == (3, 128)


def test_meangirl_spec(meangirl):
    spec, _ = read_weights(meangirl)
    assert (spec.blocks, spec.filters, spec.se_channels, spec.value) == (4, 32, 16, "classical")


def _tiny_spec(**kw):
    base = dict(blocks=2, filters=8, se_channels=4, policy="convolution", policy_channels=0, value="wdl",
                value_channels=4, value_hidden=16, moves_left=True, mlh_channels=2, mlh_hidden=8)
    base.update(kw)
    return NetSpec(**base)


def _random_state(spec, seed=0):
    torch.manual_seed(seed)
    return Lc0Net(spec).numpy_state()


@pytest.mark.parametrize("kw", [{}, {"policy": "classical", "policy_channels": 4, "value": "classical", "moves_left": False, "mlh_channels": 0, "mlh_hidden": 0},
                                {"se_channels": 0, "activation": "mish"}])
def test_float32_round_trip_is_exact(tmp_path, kw):
    spec = _tiny_spec(**kw)
    state = _random_state(spec)
    write_weights(tmp_path / "n.pb.gz", spec, state, encoding="float32")
    spec2, state2 = read_weights(tmp_path / "n.pb.gz")
    assert spec2 == spec
    for k, v in state.items():
        np.testing.assert_allclose(state2[k], v, rtol=0, atol=2e-6 * max(1.0, float(np.abs(v).max())), err_msg=k)
    x = torch.randn(3, 112, 8, 8)
    a, b = Lc0Net.from_state(spec, state)(x), Lc0Net.from_state(spec2, state2)(x)
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k


def test_linear16_round_trip_quantises_once(tmp_path):
    """LINEAR16 loses precision once (1/65535 of each layer's range); writing it again is lossless."""
    spec = _tiny_spec()
    state = _random_state(spec)
    write_weights(tmp_path / "a.pb.gz", spec, state)
    _, s1 = read_weights(tmp_path / "a.pb.gz")
    for k, v in state.items():
        step = (v.max() - v.min()) / 65535 if v.size > 1 else 0
        assert np.abs(s1[k] - v).max() <= step * 0.5 + 1e-6, k
    write_weights(tmp_path / "b.pb.gz", spec, s1)
    _, s2 = read_weights(tmp_path / "b.pb.gz")
    for k in s1:
        np.testing.assert_allclose(s2[k], s1[k], atol=1e-6, err_msg=k)


def test_rewriting_maia_keeps_its_outputs(tmp_path, maia1100):
    """Float32 rewrite is exact; LINEAR16 re-quantises the folded layers (small, bounded drift)."""
    from conceptchess.lc0.encoder import encode_boards
    from conceptchess.positions import PositionSpec

    spec, state = read_weights(maia1100)
    x = torch.from_numpy(encode_boards([PositionSpec(i, None, ms).board() for i, ms in enumerate(
        [[], ["e2e4"], ["e2e4", "e7e5", "g1f3", "b8c6", "f1b5"], ["d2d4", "g8f6", "c2c4", "e7e6", "b1c3", "f8b4"]])]))
    ref = Lc0Net.from_state(spec, state)(x)
    for enc, tol_logit, tol_wdl in (("float32", 1e-4, 1e-5), ("linear16", 0.1, 0.01)):
        write_weights(tmp_path / f"{enc}.pb.gz", spec, state, encoding=enc)
        spec2, state2 = read_weights(tmp_path / f"{enc}.pb.gz")
        out = Lc0Net.from_state(spec2, state2)(x)
        assert (out["policy"] - ref["policy"]).abs().max() < tol_logit, enc
        assert (out["wdl"] - ref["wdl"]).abs().max() < tol_wdl, enc
        assert (out["policy"].argmax(1) == ref["policy"].argmax(1)).all(), enc


def test_truncated_file(tmp_path, maia1100):
    data = maia1100.read_bytes()
    bad = tmp_path / "trunc.pb.gz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(NetworkFormatError, match="gzip"):
        open_network(bad)


def test_truncated_payload_inside_valid_gzip(tmp_path, maia1100):
    raw = gzip.decompress(maia1100.read_bytes())
    bad = tmp_path / "trunc2.pb.gz"
    bad.write_bytes(gzip.compress(raw[: len(raw) - 5000]))
    with pytest.raises(NetworkFormatError):
        open_network(bad)


def test_wrong_magic(tmp_path):
    net = proto.Net(magic=0x1234)
    p = tmp_path / "magic.pb.gz"
    p.write_bytes(gzip.compress(net.SerializeToString()))
    with pytest.raises(NetworkFormatError, match="wrong magic 0x1234"):
        open_network(p)


def test_random_bytes(tmp_path):
    p = tmp_path / "rand.pb.gz"
    p.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(NetworkFormatError):
        open_network(p)


def test_forged_layer_size(tmp_path):
    spec = _tiny_spec()
    net = build_net(spec, _random_state(spec), encoding="float32")
    net.weights.residual[1].conv2.bn_betas.params = net.weights.residual[1].conv2.bn_betas.params[:-4]
    with pytest.raises(NetworkFormatError, match=r"residual\[1\].conv2.bn_betas has 7 values, expected 8"):
        spec_and_state(net)


@pytest.mark.parametrize("field,value,name", [("network", 6, "NETWORK_ATTENTIONBODY_WITH_HEADFORMAT"),
                                              ("input", 3, "INPUT_112_WITH_CANONICALIZATION"),
                                              ("policy", 3, "POLICY_ATTENTION")])
def test_unsupported_formats_are_refused_by_name(field, value, name):
    spec = _tiny_spec()
    net = build_net(spec, _random_state(spec))
    setattr(net.format.network_format, field, value)
    with pytest.raises(NetworkFormatError, match=f"{name}.*leela2onnx"):
        spec_and_state(parse_net(gzip.compress(net.SerializeToString())))

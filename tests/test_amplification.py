"""Amplification: running the torch model from a tap reproduces the whole network (torch and ONNX Runtime);
α = 0 changes nothing; on a hand-built network the value change along a known channel is the hand-computed
number and the random control's is zero; ONNX-only networks, unknown taps and bad roots are refused."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conceptchess.amplification import amplify
from conceptchess.datasets import iter_dataset
from conceptchess.directions import ConceptDirection
from conceptchess.engine import Engine
from conceptchess.errors import ConceptChessError
from conceptchess.lc0.encoder import encode
from conceptchess.lc0.model import Lc0Net
from conceptchess.lc0.weights import NetSpec, write_weights
from conceptchess.networks import open_network
from conceptchess.positions import PositionSpec, histories_of
from tests.helpers import random_games, tiny_net

START = PositionSpec("start", moves=[], meta={"move": "e2e4"})


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def games(tmp_path_factory):
    """Positions of three seeded random games, with their history."""
    return random_games(tmp_path_factory.mktemp("amp") / "games", 3, 24, seed=3)


def _planes(dataset) -> np.ndarray:
    return encode(histories_of(list(iter_dataset(dataset)))[0])


@pytest.mark.parametrize("which", ["tiny", "maia"])
def test_forward_from_a_tap_reproduces_the_whole_network_and_onnx_runtime(request, tmp_path, games, which):
    path = tiny_net(tmp_path / "tiny.pb.gz", seed=1) if which == "tiny" else request.getfixturevalue("maia1100")
    net = open_network(path)
    model = net.torch_model()
    planes = _planes(games)[:40]
    x = torch.from_numpy(planes)
    onnx = Engine(net, device="cpu", threads=1).run_planes(planes, net.taps)
    with torch.no_grad():
        full = model(x)
        for tap in ["input"] + net.taps:
            z = model.forward_to(tap, x)
            assert z.shape == ((40, 112, 8, 8) if tap == "input" else full[tap].shape)
            if tap != "input":
                torch.testing.assert_close(z, full[tap], rtol=0, atol=1e-6)
            out = model.forward_from(tap, z)
            later = [t for t in net.taps if tap == "input" or int(t[5:]) > int(tap[5:])]
            assert sorted(out) == sorted(["policy", "wdl"] + later)
            for name in out:
                torch.testing.assert_close(out[name], full[name], rtol=0, atol=1e-5)
                assert np.abs(out[name].numpy() - onnx[name]).max() <= 1e-3, (tap, name)
    assert full["policy"].std() > 0.01  # the outputs are not trivially equal


def _direction(net, tap, size, seed=0, nonzeros=8, **kw) -> ConceptDirection:
    rng = np.random.default_rng(seed)
    v = np.zeros(size, np.float32)
    v[rng.choice(size, nonzeros, replace=False)] = rng.standard_normal(nonzeros)
    return ConceptDirection("dir", tap, v, network_sha256=net.sha256, **kw)


def test_alpha_zero_changes_nothing_and_the_result_is_complete(tmp_path, games):
    net = open_network(tiny_net(tmp_path / "tiny.pb.gz", seed=2))
    specs = list(iter_dataset(games))
    roots = [PositionSpec(s.id, s.fen, s.moves, {"move": nxt.moves[-1]}) for s, nxt in zip(specs[:10], specs[1:11])]  # the move played next
    d = _direction(net, "block0", 8 * 64, pooling="full")
    a = amplify(net, d, roots=roots, unrelated=games, alphas=(0, 0.5, 2), seed=4, resamples=200)
    assert (a.tap, a.spread, a.alphas, a.network_sha256, a.direction_sha256) == ("block0", "full", (0.0, 0.5, 2.0), net.sha256, d.sha256)
    assert a.control_sha256 == d.random_control(4).sha256
    for eff, n in ((a.roots, 10), (a.unrelated, len(specs) - a.unrelated.without_moves)):
        assert eff.move_change.shape == eff.value_change.shape == (2, 3, n) and len(eff.ids) == len(eff.moves) == n
        assert not eff.move_change[:, 0].any() and not eff.value_change[:, 0].any()
        zero = eff.effects[0]
        assert zero.alpha == 0 and zero.move.mean == zero.move.low == zero.move.high == 0 and zero.value_control.mean == 0
        assert np.abs(eff.value_change[:, 2]).max() > 1e-4  # a push of twice the activations' norm does something
        for e in eff.effects:
            for iv in (e.move, e.move_control, e.value, e.value_control):
                assert iv.low <= iv.mean + 1e-12 and iv.mean <= iv.high + 1e-12
        assert np.all((eff.probability > 0) & (eff.probability <= 1))
    assert a.roots.moves == tuple(s.meta["move"] for s in roots)
    # unrelated positions track the network's own top move
    evs = Engine(net, device="cpu", threads=1).evaluate(*histories_of(specs))
    top = [ev.best_move().uci() for ev in evs if ev.moves]
    assert list(a.unrelated.moves) == top
    assert np.allclose(a.unrelated.probability, [ev.policy.max() for ev in evs if ev.moves], atol=1e-5)
    assert np.allclose(a.unrelated.value, [ev.value for ev in evs if ev.moves], atol=1e-5)
    # seeded: the same call gives the same numbers
    b = amplify(net, d, roots=roots, alphas=(0, 0.5, 2), seed=4, resamples=200)
    assert np.array_equal(b.roots.move_change, a.roots.move_change) and b.roots.effects == a.roots.effects


def _hand_built(path):
    """One block of 4 channels whose output is the constant (0.3, 0.4, 0, 0) at every square whatever the position
    (input conv: bias only; block convs: zero), a value head reading tanh(mean of channel 0), a policy of zeros."""
    spec = NetSpec(blocks=1, filters=4, se_channels=0, policy="convolution", policy_channels=0, value="classical",
                   value_channels=1, value_hidden=1, moves_left=False)
    state = {k: np.zeros_like(v) for k, v in Lc0Net(spec).numpy_state().items()}
    state["input.bias"][:] = [0.3, 0.4, 0.0, 0.0]
    state["value_conv.weight"][0, 0, 0, 0] = 1.0
    state["ip1_val.weight"][:] = 1 / 64
    state["ip2_val.weight"][:] = 1.0
    write_weights(path, spec, state, encoding="float32")
    return open_network(path)


def test_amplification_on_a_small_hand_built_network(tmp_path):
    net = _hand_built(tmp_path / "hand.pb.gz")
    positions = [START, PositionSpec("e4", moves=["e2e4"], meta={"move": "e7e5"})]
    alphas = (0.0, 0.5, 1.0)
    # ‖z‖ = 8 · ‖(0.3, 0.4, 0, 0)‖ = 4. A mean-pooled direction along channel 0 is spread over the 64 squares
    # (‖step‖ = 8), so channel 0 becomes 0.3 + α · 4 / 8 everywhere and the value tanh(0.3 + α / 2).
    pooled = ConceptDirection("c0", "block0", [1.0, 0, 0, 0], pooling="mean")
    seed = next(s for s in range(100) if pooled.random_control(s).vector[0] == 0)  # a control off channel 0
    a = amplify(net, pooled, roots=positions, unrelated=positions, alphas=alphas, seed=seed, resamples=50)
    assert a.spread == "squares"
    for eff in (a.roots, a.unrelated):
        assert np.allclose(eff.value, math.tanh(0.3), atol=1e-6)
        want = [math.tanh(0.3 + alpha / 2) - math.tanh(0.3) for alpha in alphas]
        assert np.allclose(eff.value_change[0], np.array(want)[:, None], atol=1e-5)
        assert [e.value.mean for e in eff.effects] == pytest.approx(want, abs=1e-5)
        # the control of the same norm pushes a channel the value never reads: no change at all
        assert not eff.value_change[1].any() and all(e.value_control.mean == 0 for e in eff.effects)
        assert abs(eff.effects[-1].value_control.mean) < eff.effects[-1].value.mean
        assert not eff.move_change.any() and np.allclose(eff.probability, 1 / 20)  # a policy of zeros: uniform, untouched
    assert a.roots.moves == ("e2e4", "e7e5")
    # a full direction at one square of channel 0: that square gets α · 4 / 1, the mean over the squares α / 16;
    # standardised, it steps along scale ⊙ v (the same line here)
    v = np.zeros(4 * 64, np.float32)
    v[10] = 1.0
    full = ConceptDirection("c0sq", "block0", v, scale=np.full(4 * 64, 2.0), pooling="full")
    b = amplify(net, full, unrelated=[START], alphas=alphas, seed=seed, resamples=50)
    assert b.spread == "full" and b.roots is None
    want = [math.tanh(0.3 + alpha / 16) - math.tanh(0.3) for alpha in alphas]
    assert np.allclose(b.unrelated.value_change[0, :, 0], want, atol=1e-5)


def test_refusals(tmp_path, lc0_onnx_dir):
    net = open_network(tiny_net(tmp_path / "tiny.pb.gz", seed=3))
    d = _direction(net, "block1", 8 * 64)
    with pytest.raises(ConceptChessError, match=r"maia-1100.onnx: amplification runs the torch model, and this network is ONNX only"):
        amplify(lc0_onnx_dir / "maia-1100.onnx", ConceptDirection("x", "block1", np.ones(64)), unrelated=[START])
    with pytest.raises(ConceptChessError, match=r"tap 'block7' is not in network .*tiny.pb.gz \(taps: input, block0, block1\)"):
        amplify(net, _direction(net, "block7", 8 * 64), unrelated=[START])
    with pytest.raises(ConceptChessError, match=r"tap 'block7' is not in this network"):
        net.torch_model().forward_to("block7", torch.zeros(1, 112, 8, 8))
    with pytest.raises(ConceptChessError, match=r"direction 'dir' has 100 values; tap block1 of network .* needs 8 \(mean-pooled\) or 512"):
        amplify(net, _direction(net, "block1", 100), unrelated=[START])
    with pytest.raises(ConceptChessError, match=r"has 8 values; tap block1 of network .* needs 512"):
        amplify(net, _direction(net, "block1", 8, pooling="full"), unrelated=[START])
    with pytest.raises(ConceptChessError, match=r"direction 'x' reads network abababababab…"):
        amplify(net, ConceptDirection("x", "block1", np.ones(8), network_sha256="ab" * 32), unrelated=[START])
    with pytest.raises(ConceptChessError, match=r"roots: id=start: move 'e2e5' is not legal there"):
        amplify(net, d, roots=[PositionSpec("start", meta={"move": "e2e5"})])
    with pytest.raises(ConceptChessError, match=r"roots: id=start: a root needs its move to track"):
        amplify(net, d, roots=[PositionSpec("start")])
    with pytest.raises(ConceptChessError, match=r"give roots or unrelated"):
        amplify(net, d)
    mate = PositionSpec("mate", moves=["f2f3", "e7e5", "g2g4", "d8h4"])
    with pytest.raises(ConceptChessError, match=r"unrelated: every position is a finished game"):
        amplify(net, d, unrelated=[mate])
    assert amplify(net, d, unrelated=[mate, START], alphas=(1,), resamples=10).unrelated.without_moves == 1


def test_roots_of_a_rollouts_dataset_are_its_optimal_lines_at_ply_0(tmp_path):
    net = open_network(tiny_net(tmp_path / "tiny.pb.gz", seed=5))
    records = [PositionSpec("r/0/0", moves=[], meta={"line": "optimal", "ply": 0, "move": "d2d4"}),
               PositionSpec("r/0/1", moves=["d2d4"], meta={"line": "optimal", "ply": 1, "move": "g8f6"}),
               PositionSpec("r/1/1", moves=["e2e4"], meta={"line": "suboptimal", "ply": 1, "move": "e7e5"})]
    a = amplify(net, _direction(net, "block0", 8 * 64), roots=records, alphas=(0.5,), resamples=10)
    assert a.roots.ids == ("r/0/0",) and a.roots.moves == ("d2d4",)

"""`conceptchess net …` end to end, including bad input: one line, exit 2, nothing written."""

import gzip
import json

import numpy as np
import onnx
import pytest

from conceptchess.provenance import sha256_of
from tests.helpers import cli


def assert_one_line_error(result, *needles):
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for n in needles:
        assert n in lines[0], lines[0]


def test_info(maia1100):
    r = cli("net", "info", maia1100)
    assert r.exit_code == 0, r.output
    assert "6 blocks × 64 filters, SE 8" in r.output and "policy, wdl" in r.output
    assert sha256_of(maia1100) in r.output.replace("\n", "").replace(" ", "")


def test_info_on_lc0_onnx(shared_data):
    r = cli("net", "info", shared_data / "onnx" / "mean-girl-8.onnx.gz")
    assert r.exit_code == 0, r.output
    assert "policy, value" in r.output and "block3" in r.output


def test_convert_then_eval_the_onnx(tmp_path, maia1100):
    out = tmp_path / "m.onnx"
    r = cli("net", "convert", maia1100, "-o", out)
    assert r.exit_code == 0, r.output
    names = [o.name for o in onnx.load(str(out)).graph.output]
    assert names == ["policy", "wdl"] + [f"block{i}" for i in range(6)]
    r = cli("net", "eval", out, "--fen", "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1")
    assert r.exit_code == 0, r.output
    assert "Ra8#" in r.output and "WDL" in r.output


def test_eval_fen_with_moves(maia1100):
    r = cli("net", "eval", maia1100, "--moves", "e2e4 e7e5", "--moves", "g1f3")
    assert r.exit_code == 0, r.output
    assert "b8c6" in r.output  # the most common human reply is listed


AFTER_E4_E5_NF3 = "rnbqkbnr/pppp1ppp/8/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R b KQkq - 1 2"


@pytest.mark.parametrize("args", [
    ["--moves", "e2e4", "e7e5", "g1f3"],                 # the README's --moves UCI…
    ["--moves", "e2e4", "e7e5", "--moves", "g1f3"],
    ["--moves=e2e4", "e7e5", "g1f3", "--top", "2"],
    ["--moves", "e2e4 e7e5 g1f3"],
])
def test_eval_takes_space_separated_moves(maia1100, args):
    r = cli("net", "eval", maia1100, *args)
    assert r.exit_code == 0, r.output
    assert f"position {AFTER_E4_E5_NF3}" in r.stdout


def test_eval_moves_before_the_network_file(maia1100):
    r = cli("net", "eval", "--moves", "e2e4", "e7e5", "g1f3", maia1100, "--top", "1")
    assert r.exit_code == 0, r.output
    assert f"position {AFTER_E4_E5_NF3}" in r.stdout and f"network {maia1100}" in r.stdout


SCHOLARS_MATE = ["e2e4", "e7e5", "f1c4", "b8c6", "d1h5", "g8f6"]  # white to play Qxf7#


def test_eval_notes_a_mate_in_one_beside_the_value(maia1100):
    r = cli("net", "eval", maia1100, "--moves", *SCHOLARS_MATE)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    value = next(i for i, line in enumerate(lines) if line.startswith("WDL "))
    assert lines[value + 1].startswith("note: Qxf7# mates in one"), r.stdout
    r = cli("net", "eval", maia1100, "--moves", *SCHOLARS_MATE[:-1])
    assert r.exit_code == 0 and "mates in one" not in r.stdout


def test_batch_eval(tmp_path, maia1100):
    inp = tmp_path / "p.jsonl"
    inp.write_text("\n".join(json.dumps(d) for d in [
        {"id": "a", "moves": ["e2e4"]},
        {"id": 7, "fen": "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1"},
        {"id": "c", "fen": "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1", "moves": ["g1f1"]},
    ]) + "\n")
    out = tmp_path / "o.jsonl"
    r = cli("net", "eval", maia1100, "--input", inp, "--output", out, "--batch-size", "2")
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in rows] == ["a", 7, "c"]
    a = rows[0]
    assert set(a) == {"id", "logits", "policy", "wdl", "value", "mlh"} and a["mlh"] is None
    assert len(a["policy"]) == 20 and abs(sum(a["policy"].values()) - 1) < 1e-5
    assert a["value"] == pytest.approx(a["wdl"][0] - a["wdl"][2], abs=1e-6)
    # softmax of the logits over legal moves is the policy
    lg = np.array(list(a["logits"].values()))
    p = np.exp(lg - lg.max()) / np.exp(lg - lg.max()).sum()
    assert np.allclose(p, list(a["policy"].values()), atol=1e-5)
    assert set(rows[2]["policy"]) == {"g8f8", "g8h8", "h7h6", "h7h5", "g7g6", "g7g5", "f7f6", "f7f5"}


@pytest.mark.parametrize("record,needle", [
    ({"id": 1, "fen": "not a fen"}, "malformed FEN"),
    ({"id": 1, "fen": "8/8/8/8/8/8/8/8 w - - 0 1"}, "illegal position"),
    ({"id": 1, "moves": ["e2e5"]}, "illegal"),
    ({"id": 1, "moves": ["zz"]}, "not UCI"),
    ({"moves": []}, 'missing "id"'),
])
def test_batch_bad_positions_leave_nothing(tmp_path, maia1100, record, needle):
    inp = tmp_path / "p.jsonl"
    inp.write_text(json.dumps({"id": 0, "moves": []}) + "\n" + json.dumps(record) + "\n")
    out = tmp_path / "o.jsonl"
    r = cli("net", "eval", maia1100, "--input", inp, "--output", out)
    assert_one_line_error(r, needle)
    assert not out.exists() and list(tmp_path.iterdir()) == [inp]


def test_malformed_json_line(tmp_path, maia1100):
    inp = tmp_path / "p.jsonl"
    inp.write_text('{"id": 1}\n{"id": 2,\n')
    r = cli("net", "eval", maia1100, "--input", inp, "--output", tmp_path / "o.jsonl")
    assert_one_line_error(r, "p.jsonl:2", "malformed JSON")
    assert not (tmp_path / "o.jsonl").exists()


def test_illegal_fen_and_move_on_the_command_line(maia1100):
    assert_one_line_error(cli("net", "eval", maia1100, "--fen", "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBN w KQkq - 0 1"), "FEN")
    assert_one_line_error(cli("net", "eval", maia1100, "--moves", "e2e4 e2e4"), "move 2 'e2e4' is illegal")
    for args in (["--fen", "bad fen"], ["--moves", "e2e4", "e2e4"]):  # the position is the options', not a file's id=…
        r = cli("net", "eval", maia1100, *args)
        assert_one_line_error(r)
        assert "id=" not in r.stderr and r.stderr.startswith(("error: malformed FEN 'bad fen'", "error: move 2 'e2e4' is illegal"))


def test_bad_network_files(tmp_path, maia1100):
    trunc = tmp_path / "t.pb.gz"
    trunc.write_bytes(maia1100.read_bytes()[:1000])
    assert_one_line_error(cli("net", "info", trunc), "t.pb.gz")
    magic = tmp_path / "m.pb.gz"
    magic.write_bytes(gzip.compress(b"\x0d\x34\x12\x00\x00"))  # field 1 fixed32 = 0x1234
    assert_one_line_error(cli("net", "info", magic), "wrong magic")
    rnd = tmp_path / "r.pb.gz"
    rnd.write_bytes(np.random.default_rng(1).bytes(3000))
    assert_one_line_error(cli("net", "info", rnd))
    assert_one_line_error(cli("net", "info", tmp_path / "missing.pb.gz"), "no such network file")
    out = tmp_path / "x.onnx"
    assert_one_line_error(cli("net", "convert", trunc, "-o", out))
    assert not out.exists()


def test_non_lc0_onnx_is_refused(tmp_path, maia1100):
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    p = tmp_path / "other.onnx"
    p.write_bytes(helper.make_model(g).SerializeToString())
    assert_one_line_error(cli("net", "info", p), "not an lc0 network export")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff\xfe" * 100)
    assert_one_line_error(cli("net", "eval", junk), "not an ONNX model")
    out = tmp_path / "o.jsonl"
    inp = tmp_path / "p.jsonl"
    inp.write_text('{"id": 1}\n')
    assert_one_line_error(cli("net", "eval", p, "--input", inp, "--output", out))
    assert not out.exists()

"""The default checkpoint series shipped in engines/: readable, hashes as documented, really trained."""

import hashlib
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conceptchess.cli.main import app
from conceptchess.networks import default_network

ENGINES = Path(__file__).resolve().parent.parent / "engines"
NETS = sorted(ENGINES.glob("*.pb.gz"))


def readme_hashes() -> dict[str, str]:
    text = (ENGINES / "README.md").read_text()
    return {m.group(1): m.group(2) for m in re.finditer(r"\|\s*(\S+\.pb\.gz)\s*\|.*`([0-9a-f]{64})`", text)}


def test_series_is_shipped_and_small():
    assert len(NETS) >= 8, "engines/ must hold a checkpoint series of at least 8 networks"
    assert sum(p.stat().st_size for p in NETS) <= 20 * 1024 * 1024
    assert any("step000000" in p.name for p in NETS)


@pytest.mark.parametrize("path", NETS, ids=[p.name for p in NETS])
def test_net_info_and_sha256_match_readme(path):
    r = CliRunner().invoke(app, ["net", "info", str(path)])
    assert r.exit_code == 0, r.output
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert readme_hashes().get(path.name) == sha
    assert sha in r.output.replace("\n", "").replace(" ", "")


def test_final_checkpoint_beats_step_zero_on_held_out_games():
    metas = sorted((json.loads(p.read_text()) for p in ENGINES.glob("*-step*.json")), key=lambda m: m["step"])
    first, last = metas[0], metas[-1]
    assert first["step"] == 0 and last["step"] > 0
    assert last["heldout_accuracy"] > first["heldout_accuracy"] + 0.1
    assert last["heldout_policy_loss"] < first["heldout_policy_loss"] - 0.3
    # The WDL head does not generalise from ~630 games (see engines/README.md): it must at least stay
    # within 0.05 nats of the uniform-ish random initialisation rather than blow up.
    assert last["heldout_value_loss"] < first["heldout_value_loss"] + 0.05


def test_default_network_is_the_last_checkpoint(monkeypatch):
    monkeypatch.delenv("CONCEPTCHESS_NET", raising=False)
    assert default_network() == NETS[-1]

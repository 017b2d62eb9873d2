"""What ``make demo`` runs on (``conceptchess demo``): the network and a few well-known positions to
evaluate first. The stages themselves — evaluation, a probe sweep over the checkpoint series in
``engines/``, puzzles mined with the sweep's probe vectors (:mod:`conceptchess.puzzles.demo`) — are
driven by :mod:`conceptchess.cli.demo`.

>>> path, why = find_demo_network()                  # doctest: +SKIP
>>> path.name, why                                    # doctest: +SKIP
('cc-6x32-step001000.pb.gz', "the project's default network")
"""

from __future__ import annotations

from pathlib import Path

from conceptchess.errors import ConceptChessError
from conceptchess.networks import default_network
from conceptchess.paths import test_data_dir

DEMO_POSITIONS = [
    ("start position", None, []),
    ("scholar's mate threat (1.e4 e5 2.Bc4 Nc6 3.Qh5 Nf6)", None, ["e2e4", "e7e5", "f1c4", "b8c6", "d1h5", "g8f6"]),
    ("same, from a FEN without history", "r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4", []),
    ("back-rank mate in one", "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1", []),
    ("knight fork of king and rook", "r3k3/8/8/3N4/8/8/8/4K3 w q - 0 1", []),
]


def find_demo_network() -> tuple[Path, str]:
    """The network the demo uses and why: engines/ (or $CONCEPTCHESS_NET), else the shared Maia test net."""
    net = default_network()
    if net is not None:
        return net, "the project's default network"
    maia = test_data_dir() / "weights" / "maia-1900.pb.gz"
    if maia.exists():
        return maia, "no network in engines/ yet, so the shared test data's Maia-1900"
    raise ConceptChessError("no network found: engines/ is empty, $CONCEPTCHESS_NET is unset and ../shared/data is absent")

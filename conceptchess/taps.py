"""Tap names: ``input`` (the 112 encoded planes) and ``block0`` … ``block{N-1}`` (the output of residual block i).

One definition of the names, used by ONNX outputs, activation folders, database rows, plots and options
(TransformerLens-style: the same string everywhere). A network of N blocks has the block taps
``block_taps(N)``; its probe-able taps add ``input`` in front (:func:`network_taps`). Taps are ordered
``input`` first, then blocks by index, then anything else by name.

>>> network_taps(3)
['input', 'block0', 'block1', 'block2']
>>> block_index("block12"), is_block("input")
(12, False)
>>> order(["block10", "block2", "input"])
['input', 'block2', 'block10']
>>> parse(" input, block3,,block3")
['input', 'block3']
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from conceptchess.errors import ConceptChessError
from conceptchess.names import split_names, unique

INPUT = "input"
_BLOCK = re.compile(r"block(\d+)")


def block(i: int) -> str:
    """The tap name of residual block ``i``."""
    return f"block{i}"


def block_index(tap: str) -> int | None:
    """``i`` for ``block{i}``, None for any other tap."""
    m = _BLOCK.fullmatch(tap)
    return int(m.group(1)) if m else None


def is_block(tap: str) -> bool:
    return block_index(tap) is not None


def block_taps(blocks: int) -> list[str]:
    """The block taps of a network of ``blocks`` blocks (what its ONNX graph outputs)."""
    return [block(i) for i in range(blocks)]


def network_taps(blocks: int, *, input: bool = True) -> list[str]:
    """The taps of a network: ``input`` (unless ``input=False``) and its block taps."""
    return ([INPUT] if input else []) + block_taps(blocks)


def sort_key(tap: str) -> tuple[int, int, str]:
    """Canonical order: ``input``, then blocks by index, then other names alphabetically."""
    if tap == INPUT:
        return (0, 0, "")
    i = block_index(tap)
    return (1, i, "") if i is not None else (2, 0, tap)


def order(taps: Iterable[str]) -> list[str]:
    return sorted(taps, key=sort_key)


def parse(taps: str | Iterable[str] | None, *, duplicates: str = "drop") -> list[str] | None:
    """Tap names from ``"input,block0"`` or a list (stripped, empty entries dropped); None stays None.

    A name given twice is dropped (``duplicates="drop"``) or refused (``"refuse"``); no name at all is refused.
    """
    if taps is None:
        return None
    given = split_names(taps)
    if not given:
        raise ConceptChessError("no taps given (e.g. input,block0,block3)")
    twice = sorted({t for t in given if given.count(t) > 1})
    if twice and duplicates == "refuse":
        raise ConceptChessError(f"tap {twice[0]!r} is given twice")
    return unique(given)


def check(taps: Iterable[str], available: list[str], where: str) -> None:
    """Refuse the first of ``taps`` that is not in ``available`` (``where``: e.g. ``"network maia.pb.gz"``)."""
    bad = [t for t in taps if t not in available]
    if bad:
        raise ConceptChessError(f"tap {bad[0]!r} is not in {where} (taps: {', '.join(available)})")

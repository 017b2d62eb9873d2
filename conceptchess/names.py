"""Lists of names as people type them, and order-preserving de-duplication: one definition each.

Options such as ``--concepts in_check,material_diff`` or ``--taps input --taps block3`` arrive as comma
lists, repeated options, or both; :func:`split_names` reads all three the same way.

>>> split_names("in_check, material_diff,,in_check")
['in_check', 'material_diff', 'in_check']
>>> split_names(["input,block0", " block3 "])
['input', 'block0', 'block3']
>>> unique(split_names("a,b,a,c,b"))
['a', 'b', 'c']
>>> [n for n in unique([3, 1, 3, 2], key=lambda x: x % 2)]
[3, 2]
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

T = TypeVar("T")


def split_names(values: str | Iterable[str] | None) -> list[str]:
    """Names from a comma list or an iterable of comma lists, stripped, empty ones dropped, order and repeats kept."""
    if values is None:
        return []
    chunks = [values] if isinstance(values, str) else values
    return [n for chunk in chunks for n in (part.strip() for part in str(chunk).split(",")) if n]


def unique(items: Iterable[T], key: Callable[[T], Hashable] | None = None) -> list[T]:
    """``items`` without repeats (by ``key``, default the item itself), each kept where it first appears."""
    seen: set = set()
    out: list[T] = []
    for item in items:
        k = item if key is None else key(item)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out

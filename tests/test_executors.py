"""Executors: keyed results in the order the units came, from this process or from worker processes that run ahead."""

from __future__ import annotations

import math
import time

import pytest

from conceptchess.errors import ConceptChessError
from conceptchess.executors import InlineExecutor, ProcessExecutor, make_executor


def test_inline_runs_each_unit_when_it_is_pulled():
    pulled = []

    def units():
        for i in range(4):
            pulled.append(i)
            yield f"u{i}", i

    with InlineExecutor() as ex:
        out = []
        for key, value in ex.map(math.factorial, units()):
            out.append((key, value))
            assert len(pulled) == len(out)  # nothing runs ahead of the writer
    assert out == [("u0", 1), ("u1", 1), ("u2", 2), ("u3", 6)]


def test_process_executor_keeps_the_order_and_runs_at_most_workers_plus_ahead_units_ahead():
    pulled = []

    def units():
        for i, secs in enumerate([1.0] + [0.0] * 9):  # the first unit is the slowest
            pulled.append(i)
            yield i, secs

    with ProcessExecutor(workers=2, threads=1, ahead=2) as ex:
        got = []
        for key, value in ex.map(time.sleep, units()):
            got.append(key)
            if len(got) == 1:
                first_yield_pulled = len(pulled)
            assert value is None
    assert got == list(range(10))
    assert first_yield_pulled == 2 + 2 + 1  # submitted until more than workers + ahead were outstanding


def test_process_and_inline_give_the_same_results():
    items = [(k, n) for k, n in enumerate([5, 0, 12, 3, 20])]
    with make_executor("process", 2, 1) as p, make_executor("inline") as i:
        assert list(p.map(math.factorial, items)) == list(i.map(math.factorial, items))


def test_unknown_executor():
    with pytest.raises(ConceptChessError, match="unknown executor 'dask'"):
        make_executor("dask")

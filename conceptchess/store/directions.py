"""Concept directions from the database: a stored probe as a :class:`~conceptchess.directions.ConceptDirection`.

A probe sweep stores one result row per (run, network, tap, concept) with the path of its probe
vector (:mod:`conceptchess.store.probes`). The vector is in raw activation space (the sweep maps the
probe back from the standardised space it was fitted in), so the direction needs no standardisation:
its score is ``x · v``, the probe's read-out less its intercept (kept in the provenance). A probe is
named ``RUN:CONCEPT:TAP`` (:class:`ProbeRef`): the run's id or a prefix of its key; with several
networks in the run, the network too (its sha256 or a prefix of it, or its label in the run).

>>> with db.session() as s:                                                      # doctest: +SKIP
...     d = probe_direction(s, 3, "us_forks_available", "block5", network="ab12cd34")
>>> d.kind, d.pooling, d.provenance["score"]                                     # doctest: +SKIP
('probe', 'full', 0.87)
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from conceptchess.directions import ConceptDirection, load_array
from conceptchess.errors import ConceptChessError
from conceptchess.names import unique
from conceptchess.store.models import Dataset, NetworkRow
from conceptchess.store.probes import ProbeResult, ProbeRun, ProbeRunNetwork, result_pool

SHOWN = 10  # choices listed in a refusal


@dataclass(frozen=True)
class ProbeRef:
    """A stored probe by name: ``RUN:CONCEPT:TAP``.

    >>> ProbeRef.parse("3:us_forks_available:block5")
    ProbeRef(run='3', concept='us_forks_available', tap='block5')
    >>> ProbeRef.parse("probes/fork.npy") is None
    True
    """

    run: str  # the run's id, or a prefix of its key
    concept: str
    tap: str

    @classmethod
    def parse(cls, text: str) -> ProbeRef | None:
        """The reference ``text`` spells, or None when it is no ``RUN:CONCEPT:TAP``."""
        run, sep, rest = str(text).partition(":")
        concept, sep2, tap = rest.rpartition(":")
        if not (sep and sep2 and run and concept and tap) or "/" in run or "/" in tap:
            return None
        return cls(run, concept, tap)

    def __str__(self) -> str:
        return f"{self.run}:{self.concept}:{self.tap}"


def _listing(items: list[str]) -> str:
    return ", ".join(items[:SHOWN]) + (f" … ({len(items)} in all)" if len(items) > SHOWN else "") if items else "none"


def find_run(session: Session, run: int | str) -> ProbeRun:
    """The probe run with id ``run``, or the one whose key starts with ``run``; a one-line error listing the runs there are."""
    text = str(run).strip()
    if text.isdigit():
        found = session.get(ProbeRun, int(text))
    else:
        matches = session.scalars(select(ProbeRun).where(ProbeRun.key.startswith(text.lower())).limit(2)).all() if text else []
        if len(matches) > 1:
            raise ConceptChessError(f"probe run key prefix {text!r} is ambiguous: give more of it or the run's id")
        found = matches[0] if matches else None
    if found is None:
        ids = [str(i) for i in session.scalars(select(ProbeRun.id).order_by(ProbeRun.id))]
        raise ConceptChessError(f"no probe run {text!r} (runs: {_listing(ids)})")
    return found


def _pick_network(run: ProbeRun, concept: str, tap: str, options: list[tuple[ProbeRunNetwork, NetworkRow]],
                  network: str | None) -> tuple[ProbeRunNetwork, NetworkRow]:
    """The run's network of ``options`` that ``network`` names (sha256 or a prefix, or a label); by
    default the only probed one."""
    def show(o):
        return f"{o[0].label} ({o[1].sha256[:12]}…)"

    if network is not None:
        want = str(network).strip()
        hits = [o for o in options if o[0].label == want or (len(want) >= 6 and o[1].sha256.startswith(want.lower()))]
        if len(hits) != 1:
            what = "names several" if hits else "is not one"
            raise ConceptChessError(f"network {want[:16]!r} {what} of probe run {run.id}'s networks with a probe of {concept} at "
                                    f"{tap}: {_listing([show(o) for o in options])}")
        return hits[0]
    probed = [o for o in options if o[0].role == "probed"]
    if len(probed) != 1:
        raise ConceptChessError(f"probe run {run.id} has {len(probed)} probed networks with a probe of {concept} at {tap}; name one: "
                                f"{_listing([show(o) for o in probed or options])}")
    return probed[0]


def probe_direction(session: Session, run: int | str, concept: str, tap: str, network: str | None = None) -> ConceptDirection:
    """The stored probe of ``concept`` at ``tap`` in probe run ``run`` as a direction.

    ``network``: which of the run's networks (sha256 or a prefix of 6+ hex digits, or its label in
    the run); by default the run's only probed one. An unknown run, concept, tap or network, a probe
    that was skipped or ended at all-zero weights, or a missing vector file is a one-line error that
    lists the choices there are.
    """
    r = find_run(session, run)
    concepts = list(session.scalars(select(ProbeResult.concept).where(ProbeResult.run_id == r.id).distinct()))
    if concept not in concepts:
        close = difflib.get_close_matches(concept, concepts, n=5, cutoff=0.5)
        hint = f"closest: {', '.join(close)}; " if close else ""
        raise ConceptChessError(f"probe run {r.id} has no probe of concept {concept!r} ({hint}concepts: {_listing(sorted(concepts))})")
    # in the order the sweep wrote them (input first, then the blocks)
    taps = unique(session.scalars(select(ProbeResult.tap).where(ProbeResult.run_id == r.id, ProbeResult.concept == concept)
                                  .order_by(ProbeResult.id)))
    if tap not in taps:
        raise ConceptChessError(f"probe run {r.id} probed {concept} at taps {_listing(taps)}, not {tap!r}")
    rows = session.execute(select(ProbeResult, ProbeRunNetwork, NetworkRow)
                           .join(ProbeRunNetwork, (ProbeRunNetwork.run_id == ProbeResult.run_id)
                                 & (ProbeRunNetwork.network_id == ProbeResult.network_id))
                           .join(NetworkRow, NetworkRow.id == ProbeResult.network_id)
                           .where(ProbeResult.run_id == r.id, ProbeResult.concept == concept, ProbeResult.tap == tap)
                           .order_by(ProbeRunNetwork.position)).all()
    by_network = {n.id: res for res, _, n in rows}
    rn, net = _pick_network(r, concept, tap, [(rn, n) for _, rn, n in rows], network)
    res = by_network[net.id]
    where = f"probe run {r.id}: {concept} at {tap} of {rn.label}"
    if res.status == "skipped" or not res.vector_path:
        raise ConceptChessError(f"{where} has no probe vector ({res.status}{': ' + res.reason if res.reason else ''})")
    if res.status != "ok":
        raise ConceptChessError(f"{where} is no direction ({res.status}{': ' + res.reason if res.reason else ''})")
    vector = load_array(res.vector_path, "probe vector")
    if not hasattr(vector, "shape"):
        raise ConceptChessError(f"{res.vector_path}: a probe vector is one .npy array")
    dataset = session.get(Dataset, r.dataset_id)
    provenance = {"source": "probe", "run": r.id, "run_key": r.key, "run_seed": r.seed, "concept": concept, "tap": tap,
                  "network": rn.label, "network_role": rn.role, "probe_result": res.id, "metric": res.metric, "split": "test",
                  "score": res.score, "ci": [res.ci_low, res.ci_high], "selectivity": res.selectivity, "intercept": res.intercept,
                  "alpha": res.alpha, "nonzero": res.nonzero, "features": res.features, "vector_path": str(Path(res.vector_path))}
    return ConceptDirection(f"{concept}-probe-{tap}", tap, vector, kind="probe", pooling=result_pool(r.settings, concept),
                            network_sha256=net.sha256, dataset_sha256=dataset.sha256 if dataset else None, provenance=provenance)


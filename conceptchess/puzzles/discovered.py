"""Discovered concepts as a source of puzzles: ``discovered:ID`` names a stored discovered concept, mined
like any direction, and every puzzle mined from it carries where it came from.

:func:`discovered_direction` reads the vector file of a :class:`~conceptchess.store.discovery.DiscoveredConcept`
(the direction ``discover run`` saved: over raw activations, an erased-space concept pulled back), checks it
against the activation folder to be mined (the discovery run's network, its tap and pooling), names it
``discovered-<ID>`` (the id ``discover list`` shows, unique in its database) and puts its
:class:`DiscoveryProvenance` under ``provenance["discovery"]``. Mining copies that into each puzzle
(``PuzzleRecord.discovery``, the ``puzzles.discovery`` column) and a non-blinded PGN export into tags
(:data:`conceptchess.export.DISCOVERY_TAGS`). :func:`random_control` makes the direction's random control of
matched sparsity (for the raw pull-back of an erased-space concept, generally dense: a dense Gaussian direction
of the same norm) and marks it as that concept's control (role ``random-control``, its seed).

The ``discovery`` JSON of a puzzle (:meth:`DiscoveryProvenance.as_dict`)::

    {"role": "concept",            # or "random-control" (then "seed" is the control's seed)
     "run": 1, "concept": 5, "root": "r3", "tap": "block5", "variant": "erased", "status": "ok",
     "heldout_same_root": 0.93, "heldout_other_roots": 0.71, "swapped_control": 0.52,
     "teaching": {"result": 2, "status": "taught", "teachable": true, "difference": 0.12,
                  "interval": [0.03, 0.2], "student": "maia-1100-step400.pb.gz"},     # null: not taught yet
     "novelty": {"result": 4, "novel": false, "scores": {"1": 0.02, "5": -0.01}},     # null: not scored yet
     "seed": null}

Teaching and novelty are the concept's latest results (teaching: of role ``concept``) when it was mined.

>>> with db.session() as s:                                                    # doctest: +SKIP
...     d = discovered_direction(s, 5, ActivationFiles("acts/"))
>>> d.name, DiscoveryProvenance.of(d).variant                                  # doctest: +SKIP
('discovered-5', 'erased')
>>> results = mine_many(db, "c", [d, random_control(d, 0)], ActivationFiles("acts/"), "positions/")  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from sqlalchemy.orm import Session

from conceptchess.directions import ConceptDirection
from conceptchess.errors import ConceptChessError
from conceptchess.store.discovery import CONCEPT, RANDOM_CONTROL, DiscoveredConcept, DiscoveryRun, latest_novelty, teaching_of
from conceptchess.store.models import NetworkRow

PREFIX = "discovered:"  # how a discovered concept is named where a direction is expected: discovered:ID
KEY = "discovery"  # the key of a direction's provenance that holds its DiscoveryProvenance


def concept_name(concept_id: int) -> str:
    """The name puzzles of discovered concept ``concept_id`` carry: ``discovered-<ID>``."""
    return f"discovered-{concept_id}"


def parse_discovered(text: str) -> int | None:
    """The concept id ``text`` names as ``discovered:ID``, or None when it does not start with ``discovered:``.

    >>> parse_discovered("discovered:17"), parse_discovered("probes/fork.npz")
    (17, None)
    """
    text = str(text)
    if not text.startswith(PREFIX):
        return None
    rest = text[len(PREFIX):].strip()
    if not rest.isdigit():
        raise ConceptChessError(f"{text}: a discovered concept is discovered:ID, ID a number (see discover list)")
    return int(rest)


@dataclass(frozen=True)
class Teaching:
    """A concept's latest teaching result (role ``concept``)."""

    result: int  # the TeachingResult row
    status: str  # taught | too-few-prototypes
    teachable: bool | None
    difference: float | None  # concept-trained minus random-trained top-1 agreement
    interval: tuple[float | None, float | None]  # its bootstrap interval (low, high)
    student: str | None  # the student's file name


@dataclass(frozen=True)
class Novelty:
    """A concept's latest novelty score."""

    result: int  # the NoveltyScore row
    novel: bool
    scores: dict[str, float]  # k → score (keys as stored: strings)


@dataclass(frozen=True)
class DiscoveryProvenance:
    """Where a puzzle's discovered concept came from and what was known of it when it was mined."""

    run: int  # the discovery run
    concept: int  # the DiscoveredConcept row
    root: str
    tap: str
    variant: str  # erased | unerased
    status: str  # ok | soft-margin
    heldout_same_root: float | None  # held-out satisfaction on the root's own held-out lines
    heldout_other_roots: float | None  # … on other roots' rollouts
    swapped_control: float | None  # … of the swapped-label control
    teaching: Teaching | None = None  # None: not taught yet
    novelty: Novelty | None = None  # None: not scored yet
    role: str = CONCEPT  # concept | random-control
    seed: int | None = None  # a random control's seed

    def as_dict(self) -> dict:
        """The JSON layout of ``Puzzle.discovery`` (see the module docstring)."""
        out = asdict(self)
        if self.teaching is not None:
            out["teaching"]["interval"] = list(self.teaching.interval)
        return {"role": out.pop("role"), **out}

    @classmethod
    def from_dict(cls, d: dict) -> DiscoveryProvenance:
        """The value of a stored ``discovery`` JSON (keys it does not know are left out)."""
        t, n = d.get("teaching"), d.get("novelty")
        teaching = None if t is None else Teaching(**{**_known(Teaching, t), "interval": tuple(t.get("interval") or (None, None))})
        novelty = None if n is None else Novelty(**_known(Novelty, n))
        return cls(**{**_known(cls, d), "teaching": teaching, "novelty": novelty})

    @classmethod
    def of(cls, direction) -> DiscoveryProvenance | None:
        """The provenance a direction carries (None for any other concept)."""
        d = (getattr(direction, "provenance", None) or {}).get(KEY)
        return None if d is None else cls.from_dict(d)


def _known(cls, d: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


def discovery_of(concept) -> dict | None:
    """What a puzzle of ``concept`` stores as ``discovery``: its :class:`DiscoveryProvenance` as JSON, or None."""
    p = DiscoveryProvenance.of(concept)
    return None if p is None else p.as_dict()


def _provenance(s: Session, c: DiscoveredConcept, run: DiscoveryRun) -> DiscoveryProvenance:
    t = teaching_of(s, c.id, CONCEPT)
    n = latest_novelty(s, c.id)
    teaching = None if t is None else Teaching(t.id, t.status, t.teachable, t.difference, (t.interval_low, t.interval_high), t.student)
    novelty = None if n is None else Novelty(n.id, bool(n.novel), {str(k): float(v) for k, v in (n.scores or {}).items()})
    return DiscoveryProvenance(run.id, c.id, c.root, run.tap, c.variant, c.status, c.heldout_same_root, c.heldout_other_roots,
                               c.swapped_control, teaching, novelty)


def discovered_direction(s: Session, concept_id: int, activations) -> ConceptDirection:
    """Discovered concept ``concept_id`` as the direction to mine over ``activations`` (an
    :class:`~conceptchess.activations.ActivationFiles`), named :func:`concept_name` and carrying its
    :class:`DiscoveryProvenance`. An unknown id, a concept without a vector (its fit failed), a vector file
    missing or changed, or activations of another network, without the concept's tap or of another pooling
    than its discovery run's are one-line errors."""
    c = s.get(DiscoveredConcept, int(concept_id))
    if c is None:
        raise ConceptChessError(f"no discovered concept {concept_id}")
    if not c.vector_path:
        raise ConceptChessError(f"discovered concept {c.id} has no vector ({c.status}{': ' + c.reason if c.reason else ''})")
    run = s.get(DiscoveryRun, c.run_id)
    net = s.get(NetworkRow, run.network_id)
    have = activations.manifest.get("net_sha256")
    if have != net.sha256:
        of = f"network {have[:12]}…" if have else "an unrecorded network"
        raise ConceptChessError(f"{activations.path}: activations of {of}, not of discovery run {run.id}'s network "
                                f"{net.sha256[:12]}… ({net.path or 'path not recorded'}), which discovered concept {c.id} reads")
    if run.tap not in activations:
        raise ConceptChessError(f"{activations.path}: has no tap {run.tap!r} (taps: {', '.join(activations.taps)}), the tap of "
                                f"discovered concept {c.id}")
    if activations.pool != run.pool:
        raise ConceptChessError(f"{activations.path}: {activations.pool}-pooled; discovered concept {c.id} reads {run.pool}-pooled activations")
    direction = ConceptDirection.load(c.vector_path)
    if c.vector_sha256 and direction.sha256 != c.vector_sha256:
        raise ConceptChessError(f"{c.vector_path}: not the vector of discovered concept {c.id} (changed since discover run stored it)")
    if direction.tap != run.tap:
        raise ConceptChessError(f"{c.vector_path}: reads tap {direction.tap}, discovery run {run.id} ran at {run.tap}")
    prov = _provenance(s, c, run)
    return replace(direction, name=concept_name(c.id), provenance={**direction.provenance, KEY: prov.as_dict()})


def random_control(direction: ConceptDirection, seed: int) -> ConceptDirection:
    """``direction.random_control(seed)`` (matched sparsity, same norm, standardisation and tap); the control of a
    discovered concept keeps the concept's :class:`DiscoveryProvenance`, as role ``random-control`` with its seed."""
    control = direction.random_control(seed)
    prov = DiscoveryProvenance.of(direction)
    if prov is None:
        return control
    mark = replace(prov, role=RANDOM_CONTROL, seed=seed)
    return replace(control, provenance={**control.provenance, KEY: mark.as_dict()})

"""Schut's filters on a discovery run: prototypes, the student, teaching with its controls, and the funnel.

:func:`teach_concepts` takes a run's candidates (the concepts past the held-out check,
:func:`~conceptchess.discoveries.passes_heldout`) and, for each:

1. finds its **prototypes** in a rollouts dataset (the run's own by default, or a larger pool of roots
   searched by the same network): the roots whose optimal line the concept scores above every
   sub-optimal line at every paired ply (:func:`~conceptchess.teaching.dynamic_prototypes`). With fewer
   than ``min_prototypes`` (20) it is dropped, and the row says so;
2. chooses the **student** (:func:`~conceptchess.teaching.select_student`): the first candidate (the
   teacher's earlier checkpoints, latest first, or the networks named, in their order) whose top-1
   agreement with the teacher on the prototype positions is below ``max_agreement``. Every choice is made
   before anything is written: a concept with no such student is dropped and counted (``no-student``, each
   agreement kept), and when no concept has one the command stops, naming each agreement. A random
   control is taught to its concept's student;
3. **teaches** it (:func:`~conceptchess.teachability.teach`): KL(teacher ‖ student) on 80 % of the
   prototype roots, beside the same student trained on as many random positions of the teacher's own
   games (the 2 × 2 table), for several seeds, with a bootstrap interval over held-out roots;
4. pushes a **random vector** of the concept's norm through steps 1–3 (the control that tells a concept
   from any direction: if random vectors are as teachable, the filter is not measuring the concept).

Each result is a :class:`~conceptchess.store.discovery.TeachingResult` row, found again by a key of
the settings, teacher, students and position sets, so a killed command goes on where it stopped.
:func:`filter_run` counts the funnel — candidates → enough prototypes → a student → teachable → novel →
amplified above its control — stores it per run, and sets it beside Schut et al.'s shares (:data:`SCHUT`).

>>> teach_concepts(db, 1, random_positions="selfplay/", prototype_rollouts="pool/", prototype_activations="act-pool/")  # doctest: +SKIP
>>> filter_run(db, 1).stages                                                                                           # doctest: +SKIP
(('candidates', 169), ('enough prototypes', 12), ('a student', 12), ('teachable', 1), ('novel', 0), ('amplified above control', 0))
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from conceptchess.activations import ActivationFiles
from conceptchess.datasets import ROLLOUTS, dataset_origin, dataset_sha256, iter_dataset, read_manifest
from conceptchess.directions import ConceptDirection
from conceptchess.discoveries import passes_heldout
from conceptchess.discovery import rollout_activations
from conceptchess.errors import ArgumentError, ConceptChessError
from conceptchess.networks import open_network
from conceptchess.positions import PositionSpec
from conceptchess.progress import ProgressFor
from conceptchess.provenance import software_versions
from conceptchess.store.discovery import (
    CONCEPT,
    ERASED,
    NO_STUDENT,
    RANDOM_CONTROL,
    TAUGHT,
    TOO_FEW,
    DiscoveryFunnel,
    DiscoveryRun,
    TeachingResult,
    amplification_of,
    concepts_of_run,
    latest_novelty,
    teaching_of,
)
from conceptchess.store.models import Dataset, NetworkRow
from conceptchess.store.probes import dataset_id, network_id
from conceptchess.teachability import TeachSettings, prototype_positions, random_direction, teach, teaching_set
from conceptchess.teaching import MAX_AGREEMENT, MIN_PROTOTYPES, dynamic_prototypes, earlier_checkpoints, select_student, student_agreements

#: Schut et al. (2025), AlphaZero concepts: the share of candidates each filter removed.
SCHUT = {"teachable": 0.976, "novel": 0.271}
#: Random positions of the teacher's own games control (a) draws from (their teacher policy is computed once):
#: about 80 % train (a concept's training prototypes are rarely more than 200 positions) and 20 % are the
#: "evaluated on random" column, measured after every fine-tuning — the command's main cost, so no larger.
RANDOM_POOL = 1000


@dataclass(frozen=True)
class TeachPlan:
    """What :func:`teach_concepts` settled before teaching: per concept, its prototypes and student."""

    concept_id: int
    role: str  # concept | random-control
    prototypes: object  # teaching.Prototypes
    student: object | None  # teaching.StudentChoice; None when dropped (too few prototypes, or no student)
    direction_seed: int | None = None  # the random vector's seed (random-control rows)
    agreements: tuple = ()  # (student, agreement) of every candidate walked, when no student qualified
    refusal: str | None = None  # why no student qualified


@dataclass(frozen=True)
class FunnelCounts:
    """A run's funnel as :func:`filter_run` counted it (concepts and their random-vector controls)."""

    run_id: int
    variant: str
    teaching_key: str | None
    stages: tuple[tuple[str, int], ...]  # (stage, count) in funnel order, candidates first
    controls: tuple[tuple[str, int], ...]  # the random-vector controls: taught, enough prototypes, a student, teachable
    untaught: int = 0  # candidates past the held-out check left out (teach's limit, or a command not yet finished)
    members: tuple[tuple[str, tuple[int, ...]], ...] = ()  # (stage, concept ids) in funnel order, each best first: by
    # held-out satisfaction above the swapped-label control, then on other roots' rollouts
    schut: dict = field(default_factory=lambda: dict(SCHUT))

    def as_dict(self) -> dict:
        return asdict(self)

    def kept_share(self, stage: str) -> float | None:
        """The share of the previous stage's concepts that passed ``stage``."""
        names = [s for s, _ in self.stages]
        k = names.index(stage)
        prev = self.stages[k - 1][1] if k else None
        return None if not prev else self.stages[k][1] / prev


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _run_inputs(s, run_id: int) -> tuple[DiscoveryRun, NetworkRow, str]:
    run = s.get(DiscoveryRun, run_id)
    if run is None:
        raise ConceptChessError(f"no discovery run {run_id}")
    net = s.get(NetworkRow, run.network_id)
    return run, net, s.get(Dataset, run.dataset_id).path


def _candidates(s, run_id: int, variant: str, concept_ids) -> list:
    rows = [c for c in concepts_of_run(s, run_id) if c.variant == variant and c.vector_path]
    if concept_ids:
        by_id = {c.id: c for c in concepts_of_run(s, run_id)}
        missing = [i for i in concept_ids if i not in by_id]
        if missing:
            raise ConceptChessError(f"no concept {', '.join(map(str, missing))} in discovery run {run_id}")
        for i in concept_ids:
            if not by_id[i].vector_path:
                raise ConceptChessError(f"concept {i} has no vector ({by_id[i].status}: {by_id[i].reason})")
        return [by_id[i] for i in concept_ids]
    return [c for c in rows if passes_heldout(c)]


def _root_specs(specs: list[PositionSpec]) -> dict[str, list[PositionSpec]]:
    out: dict[str, list[PositionSpec]] = {}
    for spec in specs:
        out.setdefault(str(spec.meta.get("root")), []).append(spec)
    return out


def _random_pool(dataset: str | os.PathLike, count: int, seed: int) -> tuple[list[PositionSpec], list[str]]:
    specs = list(iter_dataset(dataset))
    if not specs:
        raise ConceptChessError(f"{dataset}: no positions")
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(specs), min(count, len(specs)), replace=False).tolist())
    chosen = [specs[i] for i in pick]
    return chosen, [str(s.meta.get("game", s.id)) for s in chosen]


def teach_concepts(db, run_id: int, *, random_positions: str | os.PathLike, students=None, teacher=None,
                   prototype_rollouts: str | os.PathLike | None = None, prototype_activations: str | os.PathLike | None = None,
                   variant: str = ERASED, concept_ids=None, settings: TeachSettings = TeachSettings(),
                   min_prototypes: int = MIN_PROTOTYPES, max_agreement: float = MAX_AGREEMENT, controls: bool = True,
                   limit: int | None = None, threads: int | None = None, device: str = "cpu",
                   progress_for: ProgressFor | None = None) -> str:
    """Prototypes, student and teaching (with both controls) for a run's candidates; returns the teaching key.
    ``limit``: only the first that many candidates (in id order; a budget, said in the funnel). ``progress_for``: two stages, ``prototypes and students`` (concepts planned) and ``teaching`` (rows stored)."""
    settings.check()
    if limit is not None and limit < 1:
        raise ArgumentError("{limit} must be at least 1", limit="limit")
    if min_prototypes < 2:
        raise ArgumentError("{min_prototypes} must be at least 2 (teaching splits the prototype roots)", min_prototypes="min_prototypes")
    if not 0 < max_agreement <= 1:
        raise ArgumentError("{max_agreement} must lie in (0, 1]", max_agreement="max_agreement")
    with db.session() as s:
        run, run_net, run_rollouts = _run_inputs(s, run_id)
        s.expunge(run_net)
        candidates = [(c.id, c.vector_path) for c in _candidates(s, run_id, variant, concept_ids)][:limit]
        plies, tap, run_acts = run.settings.get("plies", "root"), run.tap, run.activations
    if teacher is None and not (run_net.path and Path(run_net.path).is_file()):
        raise ArgumentError(f"discovery run {run_id} does not record where its network is; name the {{teacher}}", teacher="teacher")
    teacher = Path(teacher or run_net.path)
    if not candidates:  # nothing to teach is a result (the funnel's first stage is 0), not an error
        return _key("teach-none", run_id, variant)
    teacher_net = open_network(teacher)
    if teacher_net.sha256 != run_net.sha256:
        raise ConceptChessError(f"{teacher} is not discovery run {run_id}'s network (sha256 {run_net.sha256[:12]}…): its concepts "
                                "read that network's activations")
    pool = Path(prototype_rollouts or run_rollouts)
    if dataset_origin(read_manifest(pool)) != ROLLOUTS:
        raise ConceptChessError(f"{pool}: not a rollouts dataset (prototypes are roots of one)")
    if prototype_activations is None and prototype_rollouts is not None:
        raise ConceptChessError(f"name the activation folder of {pool} (prototype activations at the run's tap)")
    acts = ActivationFiles(prototype_activations or run_acts)
    if acts.manifest.get("net_sha256") != teacher_net.sha256:
        raise ConceptChessError(f"{acts.path}: activations of another network than the teacher {teacher}")
    if tap not in acts:
        raise ConceptChessError(f"{acts.path}: has no tap {tap!r} (the run's)")
    students = [Path(p) for p in students] if students else earlier_checkpoints(teacher)
    if not students:
        raise ConceptChessError(f"{teacher}: no earlier checkpoints to choose a student from; name the students")
    if threads is not None:
        import torch  # lazy: heavy; the students are fine-tuned with as many threads as the networks run with

        torch.set_num_threads(threads)
    X, meta = rollout_activations(acts, tap, pool)
    pool_specs = list(iter_dataset(pool))
    by_root = _root_specs(pool_specs)

    # 1–2. prototypes and students for every concept (and its random vector), before anything is written
    plans: list[TeachPlan] = []
    agreements_cache: dict[tuple, list] = {}
    engines: dict = {}  # the teacher's and students' engines, opened once

    def plan(cid: int, role: str, direction, seed=None, student=None) -> TeachPlan:
        """``student``: the concept's own student, which its random control reuses (the control varies only the vector)."""
        protos = dynamic_prototypes(direction, X, meta, plies=plies, min_prototypes=min_prototypes)
        if concept_ids and role == CONCEPT and not protos.count:
            raise ConceptChessError(f"concept {cid} has no prototypes: its optimal line comes first at every ply in none of the "
                                    f"{protos.candidates} roots of {pool}")
        if not protos.kept or student is not None:
            return TeachPlan(cid, role, protos, student if protos.kept else None, seed)
        key = tuple(sorted(str(r) for r in protos.roots))
        if key not in agreements_cache:
            specs, _ = _prototype_specs(protos, by_root)
            agreements_cache[key] = student_agreements(teacher, students, specs, threads=threads, device=device, engines=engines)
        try:
            return TeachPlan(cid, role, protos, select_student(agreements_cache[key], max_agreement), seed)
        except ConceptChessError as e:
            return TeachPlan(cid, role, protos, None, seed, tuple(agreements_cache[key]),
                             f"concept {cid}{' (random control)' if role != CONCEPT else ''}: {e}")

    planning = progress_for("prototypes and students") if progress_for else None
    for k, (cid, path) in enumerate(candidates):
        if planning is not None:
            planning(k, len(candidates))
        d = ConceptDirection.load(path)
        plans.append(plan(cid, CONCEPT, d))
        if controls:
            plans.append(plan(cid, RANDOM_CONTROL, random_direction(d, cid), cid, student=plans[-1].student))
    if planning is not None:
        planning(len(candidates), len(candidates))
    kept = [p for p in plans if p.prototypes.kept]
    if kept and all(p.student is None for p in kept):
        raise ConceptChessError(kept[0].refusal)
    student_paths = {p.name: p for p in students}
    random_specs, random_groups = _random_pool(random_positions, RANDOM_POOL, settings.seeds[0])
    pool_sha, random_sha = dataset_sha256(pool), dataset_sha256(random_positions)
    key = _key("teach", teacher_net.sha256, [str(p) for p in students], pool_sha, random_sha,
               settings.as_dict(), min_prototypes, max_agreement, variant, str(acts.path), RANDOM_POOL)
    with db.begin() as s:
        teacher_id = network_id(s, sha256=teacher_net.sha256, kind=teacher_net.kind, blocks=teacher_net.blocks, path=str(teacher))
        pool_id = dataset_id(s, sha256=pool_sha, path=str(pool), source=ROLLOUTS, positions=len(meta))
        random_id = dataset_id(s, sha256=random_sha, path=str(random_positions),
                               source=str(read_manifest(random_positions).get("origin", "positions")))
        done = {(p.concept_id, p.role) for p in plans if teaching_of(s, p.concept_id, p.role, key) is not None}

    # 3–4. teach, one row per (concept, role), each in its own transaction
    todo = [p for p in plans if (p.concept_id, p.role) not in done]
    progress = progress_for("teaching (concepts and random controls)") if progress_for else None
    random_set = None
    student_nets: dict = {}
    versions = software_versions("numpy", "torch", "onnxruntime")
    for k, p in enumerate(todo):
        row = TeachingResult(key=key, concept_id=p.concept_id, role=p.role, teacher_id=teacher_id, prototypes_dataset_id=pool_id,
                             random_dataset_id=random_id, prototypes=p.prototypes.count,
                             prototype_roots=[str(r) for r in p.prototypes.roots],
                             settings={**settings.as_dict(), "min_prototypes": min_prototypes, "max_agreement": max_agreement,
                                       "plies": plies, "random_pool": RANDOM_POOL, "direction_seed": p.direction_seed,
                                       "students": [str(x) for x in students], "prototype_activations": str(acts.path)},
                             versions=versions)
        if not p.prototypes.kept:
            row.status, row.reason = TOO_FEW, f"{p.prototypes.count} prototypes of {p.prototypes.candidates} roots (< {min_prototypes})"
        elif p.student is None:
            row.status, row.reason = NO_STUDENT, p.refusal
            row.student_choice = {"chosen": None, "agreement": None, "max_agreement": max_agreement,
                                  "agreements": [list(a) for a in p.agreements]}
        else:
            if random_set is None:
                random_set = teaching_set(teacher_net, random_specs, random_groups, threads=threads, device=device)
            specs, groups = _prototype_specs(p.prototypes, by_root)
            concept_set = teaching_set(teacher_net, specs, groups, threads=threads, device=device)
            student = student_paths[p.student.name]
            if student not in student_nets:
                student_nets[student] = open_network(student)
            st = student_nets[student]
            res = teach(teacher_net, st, concept_set, random_set, settings)
            with db.begin() as s:
                row.student_id = network_id(s, sha256=st.sha256, kind=st.kind, blocks=st.blocks, path=str(student))
            row.student, row.status = p.student.name, TAUGHT
            row.difference, (row.interval_low, row.interval_high), row.teachable = res.difference, res.interval, bool(res.teachable)
            row.result = json.loads(json.dumps(res.as_dict(), default=float))
            row.student_choice = {"chosen": p.student.name, "agreement": p.student.agreement, "max_agreement": p.student.max_agreement,
                                  "agreements": [list(a) for a in p.student.agreements]}
        with db.begin() as s:
            s.add(row)
        if progress is not None:
            progress(k + 1, len(todo))
    return key


def _prototype_specs(protos, by_root: dict[str, list[PositionSpec]]) -> tuple[list[PositionSpec], list[str]]:
    """The prototype roots' teaching positions (:func:`~conceptchess.teachability.prototype_positions`), grouped by root."""
    roots = [str(r) for r in protos.roots]
    return prototype_positions([sp for r in roots for sp in by_root[r]], roots)




STAGES = ("candidates", "enough prototypes", "a student", "teachable", "novel", "amplified above control")


def latest_teaching_key(s, run_id: int) -> str | None:
    """The key of the run's latest teaching (what :func:`filter_run` counts by default)."""
    ids = [c.id for c in concepts_of_run(s, run_id)]
    rows = [teaching_of(s, cid) for cid in ids]
    rows = [r for r in rows if r is not None]
    return max(rows, key=lambda r: r.id).key if rows else None


def filter_run(db, run_id: int, *, variant: str = ERASED, teaching_key: str | None = None, store: bool = True) -> FunnelCounts:
    """Count a run's funnel — candidates (past the held-out check) → enough prototypes → teachable → novel →
    amplification above its random control — and the random-vector controls' counts, and store it."""
    with db.session() as s:
        run = s.get(DiscoveryRun, run_id)
        if run is None:
            raise ConceptChessError(f"no discovery run {run_id}")
        key = teaching_key or latest_teaching_key(s, run_id)
        cands = [c for c in concepts_of_run(s, run_id) if c.variant == variant and c.vector_path and passes_heldout(c)]
        if key is None and cands:
            raise ConceptChessError(f"discovery run {run_id} has not been taught (run discover teach --run {run_id} first)")
        taught = {c.id: teaching_of(s, c.id, CONCEPT, key) for c in cands}
        untaught = sum(t is None for t in taught.values())
        if cands and untaught == len(cands):
            raise ConceptChessError(f"no candidate of run {run_id} has a teaching result under key {key[:12]}")
        cands = [c for c in cands if taught[c.id] is not None]  # a budget (teach's limit) or an unfinished command: said below
        cands.sort(key=lambda c: (-(c.heldout_same_root - (c.swapped_control if c.swapped_control is not None else 0.5)),
                                  -(c.heldout_other_roots or 0.0), c.id))  # best first: the members' order
        enough = [c for c in cands if taught[c.id].status in (TAUGHT, NO_STUDENT)]
        with_student = [c for c in enough if taught[c.id].status == TAUGHT]
        teachable = [c for c in with_student if taught[c.id].teachable]
        novel = [c for c in teachable if (n := latest_novelty(s, c.id)) is not None and n.novel]
        amplified = [c for c in novel if (a := [x for x in amplification_of(s, c.id) if x.positions == "roots"]) and a[-1].above_control]
        ctrl = [r for c in cands if (r := teaching_of(s, c.id, RANDOM_CONTROL, key)) is not None]
        groups = (cands, enough, with_student, teachable, novel, amplified)
        counts = FunnelCounts(run_id, variant, key, tuple((name, len(g)) for name, g in zip(STAGES, groups)),
                              (("random vectors", len(ctrl)), ("enough prototypes", sum(r.status in (TAUGHT, NO_STUDENT) for r in ctrl)),
                               ("a student", sum(r.status == TAUGHT for r in ctrl)), ("teachable", sum(bool(r.teachable) for r in ctrl))),
                              untaught=untaught,
                              members=tuple((name, tuple(c.id for c in g)) for name, g in zip(STAGES, groups)))
    if store:
        with db.begin() as s:
            s.add(DiscoveryFunnel(run_id=run_id, variant=variant, teaching_key=key, stages=[list(x) for x in counts.stages],
                                  controls={k: v for k, v in counts.controls}, settings={"schut": SCHUT, "untaught": untaught}))
    return counts

"""Random edit sequences of two sessions, interleaved with undo, redo and revert,
against a plain model in which every undo restores exactly its own rows.

The two sessions are two tables on one store folder, each with its own store
object (as two processes would have); ``tests/test_trust.py`` runs real processes.
``HYPOTHESIS_PROFILE=thorough`` runs thousands of sequences.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from dataclasses import dataclass, field

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import weightwidget as ww
from weightwidget.errors import NothingChangedWarning, UndoConflictError

N = 12
VALUES = [0.0, 0.5, 1.0, 2.0, 3.0]


@dataclass
class Step:
    """One committed revision as the model sees it."""

    ids: np.ndarray
    new: np.ndarray
    old: np.ndarray


@dataclass
class Session:
    undo: list[Step] = field(default_factory=list)
    redo: list[Step] = field(default_factory=list)


class Model:
    """Weights and per-session undo/redo stacks, kept forward, the obvious way."""

    def __init__(self) -> None:
        self.weights = np.ones(N)
        self.history = [self.weights.copy()]
        self.sessions = {"A": Session(), "B": Session()}

    def _commit(self, ids: np.ndarray, values: np.ndarray) -> Step:
        step = Step(ids, values.copy(), self.weights[ids].copy())
        self.weights[ids] = values
        self.history.append(self.weights.copy())
        return step

    def edit(self, who: str, ids: np.ndarray, values: np.ndarray) -> None:
        changed = self.weights[ids] != values
        step = self._commit(ids[changed], values[changed])
        if changed.any():  # an edit that changed nothing is nothing to undo
            self.sessions[who].undo.append(step)
            self.sessions[who].redo.clear()

    def revert(self, who: str, rev: int) -> str:
        target = self.history[rev]
        ids = np.flatnonzero(self.weights != target)
        if ids.size == 0:
            return "nothing"
        self.edit(who, ids, target[ids])
        return "ok"

    def _inverse(self, step: Step, force: bool) -> str | Step:
        moved = step.ids[self.weights[step.ids] != step.new]
        if moved.size and not force:
            return "conflict"
        differ = self.weights[step.ids] != step.old
        if not differ.any():
            return "nothing"
        return self._commit(step.ids[differ], step.old[differ])

    def undo(self, who: str, force: bool) -> str:
        s = self.sessions[who]
        if not s.undo:
            return "empty"
        result = self._inverse(s.undo[-1], force)
        if isinstance(result, str):
            return result
        s.undo.pop()
        s.redo.append(result)
        return "ok"

    def redo(self, who: str, force: bool) -> str:
        s = self.sessions[who]
        if not s.redo:
            return "empty"
        result = self._inverse(s.redo[-1], force)
        if isinstance(result, str):
            return result
        s.redo.pop()
        s.undo.append(result)
        return "ok"


rows = st.lists(st.integers(0, N - 1), min_size=1, max_size=5, unique=True).map(
    lambda ids: np.array(sorted(ids), dtype=np.int64)
)
ops = st.one_of(
    st.tuples(st.just("set"), st.sampled_from("AB"), rows, st.sampled_from(VALUES)),
    st.tuples(st.just("scale"), st.sampled_from("AB"), rows, st.sampled_from([0.0, 0.5, 2.0])),
    st.tuples(st.just("undo"), st.sampled_from("AB"), st.booleans()),
    st.tuples(st.just("redo"), st.sampled_from("AB"), st.booleans()),
    st.tuples(st.just("revert"), st.sampled_from("AB"), st.integers(0, 40)),
)


def _run(table: ww.WeightTable, call) -> str:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            call()
        except UndoConflictError:
            return "conflict"
        except ValueError as e:
            if "nothing to undo" in str(e) or "nothing to redo" in str(e):
                return "empty"
            raise
    if any(issubclass(w.category, NothingChangedWarning) for w in caught):
        return "nothing"
    return "ok"


@given(st.lists(ops, min_size=1, max_size=30))
def test_interleaved_sessions_match_the_model(sequence):
    folder = tempfile.mkdtemp(prefix="ww-model-")
    try:
        ww.WeightTable.from_arrays(labels=np.arange(N) % 3, store=folder)
        tables = {who: ww.WeightTable.open(folder, session=who) for who in "AB"}
        model = Model()
        for op in sequence:
            kind, who = op[0], op[1]
            t = tables[who]
            if kind == "set":
                ids, value = op[2], op[3]
                t.set_weights(ids, value)
                model.edit(who, ids, np.full(ids.size, value))
            elif kind == "scale":
                ids, factor = op[2], op[3]
                t.latest()
                t.scale_weights(ids, factor)
                model.edit(who, ids, model.weights[ids] * factor)
            elif kind == "revert":
                rev = op[2] % len(model.history)
                got = _run(t, lambda t=t, rev=rev: t.revert(rev))
                assert got == model.revert(who, rev)
            else:
                force = op[2]
                method = t.undo if kind == "undo" else t.redo
                got = _run(t, lambda method=method, force=force: method(force=force))
                expected = getattr(model, kind)(who, force)
                assert got == expected, (kind, who, force, got, expected)
            assert t.revision == len(model.history) - 1
            np.testing.assert_array_equal(t.weights, model.weights)
            for other in tables.values():
                assert other.can_undo == bool(model.sessions[other.session].undo) or (
                    other.revision != t.revision  # not refreshed yet: checked after latest()
                )
        for who, t in tables.items():
            t.latest()
            assert t.can_undo == bool(model.sessions[who].undo)
            assert t.can_redo == bool(model.sessions[who].redo)
        again = ww.WeightTable.open(folder)
        np.testing.assert_array_equal(again.weights, model.weights)
        assert len(again.history()) == len(model.history)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

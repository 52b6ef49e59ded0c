"""Curation help: which rows deserve a change.

:func:`find_label_issues` flags rows whose label looks wrong, from out-of-fold
predicted probabilities, with confident learning (Northcutt, Jiang and Chuang,
"Confident Learning: Estimating Uncertainty in Dataset Labels", JAIR 2021) as
implemented by `cleanlab <https://github.com/cleanlab/cleanlab>`_ (the
``labels`` extra: ``pip install "weightwidget[labels]"``). :func:`out_of_fold`
gets those probabilities for any model from a train and a predict function.

Out-of-fold probabilities
-------------------------
Each row's probabilities must come from a model that did not train on that row;
otherwise the model has memorised the (possibly wrong) label and agrees with
it. With scikit-learn, ``cross_val_predict`` does this; train on the included
rows with their current weights, and give it the table's label codes so that
column ``j`` scores ``t.classes[j]``::

    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    rows = t.select("weight > 0")
    pred_probs = np.full((len(t), len(t.classes)), np.nan)
    pred_probs[rows] = cross_val_predict(
        LogisticRegression(max_iter=1000), X[rows], t.label_codes[rows],
        cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba",
        params={"sample_weight": t.weights[rows]},  # scikit-learn >= 1.4
    )
    issues = ww.find_label_issues(t, pred_probs, run="r1", where=rows)

``predict_proba``'s columns follow the estimator's ``classes_``, the sorted
distinct labels it saw: the same order as ``t.classes`` as long as every class
has an included row (otherwise the shape check below says which is missing).
For other frameworks (PyTorch, Keras), :func:`out_of_fold` runs the folds.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._checks import check_choice
from .metrics import _to_numpy

if TYPE_CHECKING:
    from .table import WeightTable

__all__ = [
    "STRATEGIES",
    "find_label_issues",
    "label_issue_columns",
    "out_of_fold",
    "suggest_to_label",
]

STRATEGIES = ("least_confident", "margin", "entropy")

_RUN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# float32 softmax outputs sum to 1 within about 1e-6; anything further off is not
# a probability vector (logits, scores, or a row of a different array).
_SUM_TOLERANCE = 1e-3
_SOFTMAX_HINT = (
    "pass probabilities, e.g. softmax of logits (scipy.special.softmax(logits, axis=1) "
    "or torch.softmax(logits, 1))"
)
_INSTALL_HINT = (
    'find_label_issues needs cleanlab, in the "labels" extra: '
    'pip install "weightwidget[labels]" (or pip install cleanlab)'
)


def label_issue_columns(run: str) -> dict[str, str]:
    """Return the column names :func:`find_label_issues` writes for ``run``.

    Parameters
    ----------
    run : str
        The run name, an identifier (letters, digits, underscores).

    Returns
    -------
    dict of str to str
        ``{"issue": f"{run}_label_issue", "quality": f"{run}_label_quality",
        "suggested": f"{run}_suggested_label"}``.
    """
    if not isinstance(run, str) or not _RUN.match(run):
        raise ValueError(
            "run must be an identifier (letters, digits and underscores, not starting with "
            f"a digit) so that filters like '{{run}}_label_issue' parse; got run={run!r}"
        )
    return {
        "issue": f"{run}_label_issue",
        "quality": f"{run}_label_quality",
        "suggested": f"{run}_suggested_label",
    }


def find_label_issues(
    table: WeightTable,
    pred_probs: Any,
    *,
    run: str = "name",
    where: Any = None,
    filter_by: str = "prune_by_noise_rate",
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Flag rows whose label looks wrong, from out-of-fold predicted probabilities.

    Detection is cleanlab's (``cleanlab.filter.find_label_issues``, confident
    learning); the quality score is ``cleanlab.rank.get_label_quality_scores``
    (self-confidence: the predicted probability of the given label). The result
    becomes three columns of the table, committed as one revision (one
    ``set_columns`` call) and recorded as a run (see :meth:`WeightTable.runs`):

    ``{run}_label_issue``
        bool, True for a flagged row; False for rows ``where`` leaves out.
    ``{run}_label_quality``
        float64 in [0, 1], lower is worse; NaN for rows ``where`` leaves out.
    ``{run}_suggested_label``
        The most probable class (a value of ``table.classes``). Rows ``where``
        leaves out are missing: NaN for numeric classes (the column is then
        float64), a missing category for text classes.

    Filters can use them: ``r1_label_issue and r1_label_quality < 0.1``.

    Parameters
    ----------
    table : WeightTable
        The table whose labels are checked.
    pred_probs : array-like of shape (n_rows, n_classes) or DataFrame
        Out-of-fold class probabilities (see the module notes for how to get
        them): row ``i`` from a model that did not train on row ``i``; column
        ``j`` scores ``table.classes[j]``. A DataFrame whose columns are the
        class names is reordered by name (its index is ignored: rows are
        positional). numpy, torch and TensorFlow arrays work. With ``where``,
        the shape may also be ``(n_selected, n_classes)``, one row per selected
        row in row-id order; rows ``where`` leaves out are not read (they may
        hold NaN).
    run : str, default="name"
        Run name, an identifier; a second call with the same name replaces
        the run's columns.
    where : str, array-like of bool or int, slice or None, default=None
        Restrict the check to these rows (as in ``table.select``): a filter
        string, a boolean mask, row ids or a slice; None is every row.
        Confident learning estimates the noise from the selected rows only.
    filter_by : str, default="prune_by_noise_rate"
        cleanlab's ``filter_by`` (``"prune_by_noise_rate"``,
        ``"prune_by_class"``, ``"both"``, ``"confident_learning"``,
        ``"predicted_neq_given"``, ...).
    n_jobs : int, default=1
        cleanlab's worker processes. The result does not depend on it; 1
        avoids forking a kernel that holds PyTorch or TensorFlow threads.

    Returns
    -------
    pandas.DataFrame
        The flagged rows, worst (lowest quality) first, ties by row id. Index
        ``row`` (row id); columns ``label``, ``suggested_label``, ``quality``
        and ``weight`` (the current weight). ``attrs`` holds ``run``,
        ``revision`` (the revision that added the columns; the run was computed
        at the one before, as :meth:`WeightTable.runs` shows) and ``columns``.

    Raises
    ------
    ValueError
        ``pred_probs`` of the wrong shape, with NaN or inf, negative values,
        rows that do not sum to 1, or columns in an order (or with names) that
        do not match ``table.classes``; a table with fewer than 2 classes; no
        selected rows; a ``run`` that is not an identifier.
    ImportError
        cleanlab is not installed (``pip install "weightwidget[labels]"``).

    Examples
    --------
    >>> issues = ww.find_label_issues(t, pred_probs, run="r1")  # doctest: +SKIP
    >>> t.set_weights("r1_label_issue", 0, message="exclude label issues of r1")  # doctest: +SKIP
    """
    names = label_issue_columns(run)
    classes = np.asarray(table.classes)
    k, n = len(classes), len(table)
    if k < 2:
        raise ValueError(
            f"find_label_issues needs at least 2 classes; the table has {k} "
            f"({[_plain(c) for c in classes]!r}); a single class leaves no label to doubt"
        )
    ids = np.asarray(table.select(where), dtype=np.int64)
    codes_all = np.asarray(table.label_codes)
    ids = ids[codes_all[ids] >= 0]  # unlabelled rows (code -1) have no label to check
    if ids.size == 0:
        raise ValueError(
            f"no labelled rows match where={where!r}; nothing to check. Widen where= "
            "(None checks every row)"
        )
    probs, named = _probabilities(pred_probs, classes)
    if probs.ndim != 2 or probs.shape[1] != k or probs.shape[0] not in (n, ids.size):
        sub = f" or ({ids.size}, {k}) for the {ids.size:,} selected rows" if ids.size != n else ""
        raise ValueError(
            f"pred_probs must have shape (n_rows, n_classes) = ({n}, {k}){sub}, one column "
            f"per class of table.classes {_short(classes)} in that order; got shape "
            f"{probs.shape}. A model that never saw a class has no column for it: train on "
            "rows of every class, or pass a DataFrame with class-named columns"
        )
    sub = probs if probs.shape[0] == ids.size else probs[ids]  # sub[i] belongs to row ids[i]
    codes = codes_all[ids].astype(np.int64)
    _check_probabilities(sub, ids)
    suggested_sub = sub.argmax(axis=1)
    if not named:
        _check_class_order(suggested_sub, codes, classes)

    present = np.flatnonzero(np.bincount(codes, minlength=k))
    if present.size < 2:
        raise ValueError(
            f"the {ids.size:,} rows where={where!r} selects all carry label "
            f"{_plain(classes[present[0]])!r}; confident learning compares classes, so select "
            "rows of at least 2 classes (flag the whole table, then filter on "
            f"'{names['issue']} and label == ...')"
        )

    try:
        from cleanlab.filter import find_label_issues as cl_find_label_issues
        from cleanlab.rank import get_label_quality_scores
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc

    flagged_sub = np.asarray(
        cl_find_label_issues(codes, sub, filter_by=filter_by, n_jobs=n_jobs), dtype=bool
    )
    quality_sub = np.asarray(get_label_quality_scores(codes, sub), dtype=np.float64)

    issue = np.zeros(n, dtype=bool)
    issue[ids] = flagged_sub
    quality = np.full(n, np.nan)
    quality[ids] = quality_sub
    suggested = _suggested_column(suggested_sub, ids, classes, n)

    weights = np.asarray(table.weights, dtype=np.float64)
    w_sel = weights[ids]
    flagged_ids = ids[flagged_sub]
    count = int(flagged_ids.size)
    per_class = np.bincount(codes[flagged_sub], minlength=k)
    w_total, w_flagged = float(w_sel.sum()), float(w_sel[flagged_sub].sum())
    aggregates = {
        "rows": int(ids.size),
        "flagged": count,
        "fraction": count / ids.size,
        "weight_sum": w_total,
        "flagged_weight": w_flagged,
        "weighted_fraction": w_flagged / w_total if w_total > 0 else None,
        "per_class": {str(_plain(c)): int(v) for c, v in zip(classes, per_class, strict=True)},
    }
    scope = "all rows" if where is None else f"{ids.size:,} rows"
    revision = table.set_columns(
        {names["issue"]: issue, names["quality"]: quality, names["suggested"]: suggested},
        message=f"label issues of run {run!r}: {count:,} of {scope} flagged",
        run=run,
        info={
            "kind": "label_issues",
            "aggregates": aggregates,
            "filter_by": filter_by,
            "where": where if isinstance(where, str) or where is None else "rows",
        },
    )

    order = np.argsort(quality_sub[flagged_sub], kind="stable")  # ids ascend: ties by row id
    rows = flagged_ids[order]
    out = pd.DataFrame(
        {
            "label": table.labels[rows],
            "suggested_label": classes[suggested_sub[flagged_sub][order]],
            "quality": quality_sub[flagged_sub][order],
            "weight": weights[rows],
        },
        index=pd.Index(rows, name="row"),
    )
    out.attrs.update(run=run, revision=int(revision), columns=list(names.values()))
    return out


def out_of_fold(
    train_fn: Callable[[np.ndarray, np.ndarray], Any],
    predict_fn: Callable[[Any, np.ndarray], Any],
    table: WeightTable,
    *,
    folds: int = 5,
    seed: int = 0,
    where: Any = None,
    progress: bool = True,
) -> np.ndarray:
    """Out-of-fold class probabilities for any model, trained on the table's weights.

    The included rows (weight > 0) that ``where`` selects are split into
    ``folds`` stratified folds (each class spread evenly, seeded). For each
    fold, ``train_fn`` trains a model on the other folds with their current
    weights and ``predict_fn`` predicts the held-out fold, so every covered
    row's probabilities come from a model that never saw it: what
    :func:`find_label_issues` needs.

    Parameters
    ----------
    train_fn : callable ``(train_ids, sample_weight) -> model``
        Trains a fresh model on the rows ``train_ids`` (sorted row ids, int64)
        with ``sample_weight`` (float64, their current weights; use them as
        loss weights or sampling weights, e.g. ``torch.utils.data.
        WeightedRandomSampler``). The labels to train on are
        ``table.label_codes[train_ids]`` (class indices in ``table.classes``
        order).
    predict_fn : callable ``(model, ids) -> array of shape (len(ids), n_classes)``
        Class probabilities of rows ``ids``, column ``j`` scoring
        ``table.classes[j]`` (numpy, torch or TensorFlow).
    table : WeightTable
        The table: its labels, its current weights, and the row count.
    folds : int, default=5
        Number of folds, at least 2.
    seed : int, default=0
        Seed of the fold assignment.
    where : str, array-like of bool or int, slice or None, default=None
        Restrict to these rows (as in ``table.select``); None is every row.
    progress : bool, default=True
        Show a tqdm progress bar over the folds.

    Returns
    -------
    numpy.ndarray of shape (n_rows, n_classes)
        float64. Rows not covered (weight 0, outside ``where``, or unlabelled)
        are NaN: pass ``where=~np.isnan(probs).any(axis=1)`` (or the same
        ``where``) to :func:`find_label_issues`.

    Raises
    ------
    ValueError
        ``folds`` below 2 or above the number of covered rows, no covered rows,
        or ``predict_fn`` returning the wrong shape.

    Examples
    --------
    >>> def train_fn(ids, sample_weight):  # doctest: +SKIP
    ...     model = make_model()
    ...     fit(model, x[ids], t.label_codes[ids], sample_weight)
    ...     return model
    >>> def predict_fn(model, ids):  # doctest: +SKIP
    ...     with torch.no_grad():
    ...         return torch.softmax(model(x[ids]), 1)
    >>> probs = ww.out_of_fold(train_fn, predict_fn, t, folds=5)  # doctest: +SKIP
    >>> covered = ~np.isnan(probs).any(axis=1)  # doctest: +SKIP
    >>> ww.find_label_issues(t, probs, run="oof", where=covered)  # doctest: +SKIP
    """
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2; got folds={folds!r}")
    folds = int(folds)
    n, k = len(table), len(table.classes)
    weights = np.array(table.weights, dtype=np.float64)  # one revision for every fold
    codes_all = np.asarray(table.label_codes)
    ids = np.asarray(table.select(where), dtype=np.int64)
    ids = ids[(weights[ids] > 0) & (codes_all[ids] >= 0)]
    if ids.size == 0:
        raise ValueError(
            f"no included, labelled rows match where={where!r}: out-of-fold predictions "
            "need rows with weight > 0"
        )
    if folds > ids.size:
        raise ValueError(
            f"folds={folds} is more than the {ids.size:,} covered rows; use fewer folds"
        )
    codes = codes_all[ids]
    counts = np.bincount(codes, minlength=k)
    smallest = int(counts[counts > 0].min())
    if smallest < folds:
        cls = table.classes[int(np.flatnonzero(counts == smallest)[0])]
        warnings.warn(
            f"the least populated class {_plain(cls)!r} has only {smallest} covered rows, "
            f"fewer than folds={folds}: some folds train without it",
            UserWarning,
            stacklevel=2,
        )
    # Stratified: shuffle, group by class (stable), deal the rows round-robin.
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(ids.size)
    dealt = shuffled[np.argsort(codes[shuffled], kind="stable")]
    fold_of = np.empty(ids.size, dtype=np.int64)
    fold_of[dealt] = np.arange(ids.size) % folds

    from tqdm.auto import tqdm

    out = np.full((n, k), np.nan)
    for f in tqdm(range(folds), desc="out-of-fold", unit="fold", disable=not progress):
        held = fold_of == f
        test_ids, train_ids = ids[held], ids[~held]
        model = train_fn(train_ids, weights[train_ids])
        probs = _to_numpy(predict_fn(model, test_ids), what="predict_fn's output")
        if probs.shape != (test_ids.size, k):
            raise ValueError(
                f"predict_fn must return shape (len(ids), n_classes) = ({test_ids.size}, {k}) "
                f"for fold {f}; got shape {probs.shape}"
            )
        out[test_ids] = probs
    return out


def suggest_to_label(
    table: WeightTable,
    pred_probs: Any,
    k: int,
    *,
    strategy: str = "least_confident",
    seed: int | None = None,
) -> pd.DataFrame:
    """The ``k`` unlabelled rows to label next: those the model is least sure about.

    Uncertainty sampling (Settles, "Active Learning Literature Survey", 2009):
    each unlabelled row (a missing label, ``table.label_codes < 0``) is scored
    from its predicted probabilities ``p`` (sorted, ``p1 >= p2 >= ...``), and the
    highest scores come first:

    ``"least_confident"``
        ``1 - p1``: the top class is least probable.
    ``"margin"``
        ``1 - (p1 - p2)``: the two most probable classes are closest.
    ``"entropy"``
        ``-sum(p * log p)`` (natural log): the whole distribution is flattest.

    Rows with equal scores are ordered at random, seeded by ``seed``.

    Parameters
    ----------
    table : WeightTable
        The table; only its labels are read (``label_codes``, ``classes``).
    pred_probs : array-like of shape (n_rows, n_classes) or DataFrame
        Class probabilities from the current model, column ``j`` for
        ``table.classes[j]`` (a DataFrame with class-named columns is reordered
        by name). Only the unlabelled rows are read, so labelled rows may hold
        NaN; shape ``(n_unlabelled, n_classes)``, one row per unlabelled row in
        row-id order, works too.
    k : int
        How many rows to suggest, at least 1. Fewer come back when fewer rows
        are unlabelled.
    strategy : {"least_confident", "margin", "entropy"}, default="least_confident"
        The uncertainty score, as above.
    seed : int, default=None
        Seeds the order among rows with equal scores; None draws a fresh one.

    Returns
    -------
    pandas.DataFrame
        ``min(k, n_unlabelled)`` rows in suggestion order. Index ``row`` (row
        id); columns ``score`` (higher: more uncertain), ``suggested_label``
        (the most probable class) and ``confidence`` (its probability).

    Raises
    ------
    ValueError
        No unlabelled rows; ``k`` below 1; an unknown ``strategy``;
        ``pred_probs`` of the wrong shape, with NaN or inf, negative values or
        rows that do not sum to 1 (on the unlabelled rows).

    Examples
    --------
    >>> nxt = ww.suggest_to_label(t, model_probs, 50, strategy="margin", seed=0)  # doctest: +SKIP
    >>> nxt.index  # the row ids to label, most uncertain first  # doctest: +SKIP
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1; got k={k!r}")
    check_choice(strategy, STRATEGIES, what="strategy")
    classes = np.asarray(table.classes)
    n, c = len(table), len(classes)
    ids = np.flatnonzero(np.asarray(table.label_codes) < 0)
    if ids.size == 0:
        raise ValueError(
            "every row is labelled: suggest_to_label picks among unlabelled rows (missing "
            "labels); to find doubtful labels among labelled rows, use find_label_issues"
        )
    probs, _ = _probabilities(pred_probs, classes)
    if probs.ndim != 2 or probs.shape[1] != c or probs.shape[0] not in (n, ids.size):
        raise ValueError(
            f"pred_probs must have shape (n_rows, n_classes) = ({n}, {c}) or "
            f"({ids.size}, {c}) for the {ids.size:,} unlabelled rows, one column per class "
            f"of table.classes {_short(classes)} in that order; got shape {probs.shape}"
        )
    sub = probs if probs.shape[0] == ids.size else probs[ids]
    _check_probabilities(sub, ids)

    score = _uncertainty(sub, strategy)
    best = sub.argmax(axis=1)
    take = min(int(k), ids.size)
    # only the rows that can make the top `take` (ties at the cut included) are sorted
    if take < ids.size:
        cut = np.partition(score, ids.size - take)[ids.size - take]
        candidates = np.flatnonzero(score >= cut)
    else:
        candidates = np.arange(ids.size)
    tiebreak = np.random.default_rng(seed).random(candidates.size)
    order = candidates[np.lexsort((tiebreak, -score[candidates]))][:take]
    out = pd.DataFrame(
        {
            "score": score[order],
            "suggested_label": classes[best[order]],
            "confidence": sub[order, best[order]],
        },
        index=pd.Index(ids[order], name="row"),
    )
    out.attrs.update(strategy=strategy, unlabelled=int(ids.size))
    return out


def _uncertainty(p: np.ndarray, strategy: str) -> np.ndarray:
    """Higher is more uncertain; one score per row of ``p``."""
    if strategy == "least_confident":
        return 1.0 - p.max(axis=1)
    if strategy == "margin":
        if p.shape[1] == 1:
            return np.zeros(len(p))
        top2 = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
        return 1.0 - (top2[:, 1] - top2[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)  # 0 log 0 = 0
    return -terms.sum(axis=1)


# ---------------------------------------------------------------------- helpers
def _probabilities(pred_probs: Any, classes: np.ndarray) -> tuple[np.ndarray, bool]:
    """Return float64 probabilities in ``classes`` order and whether columns were named."""
    if not isinstance(pred_probs, pd.DataFrame):
        return _to_numpy(pred_probs, what="pred_probs"), False
    cols = list(pred_probs.columns)
    position = pd.Index(cols).get_indexer(classes)
    if (position < 0).any():  # class 3 vs column "3": match by text as well
        as_text = pd.Index([str(c) for c in cols])
        if as_text.is_unique:
            position = as_text.get_indexer([str(_plain(c)) for c in classes])
    missing = [_plain(c) for c, p in zip(classes, position, strict=True) if p < 0]
    extra = sorted(set(range(len(cols))) - set(position[position >= 0].tolist()))
    if missing or extra:
        raise ValueError(
            "pred_probs' columns must be the table's classes "
            f"{_short(classes)}; missing {missing!r}"
            + (f", unknown {[cols[i] for i in extra]!r}" if extra else "")
            + ". Name the columns after table.classes, or pass an array in that order"
        )
    return _to_numpy(pred_probs.to_numpy()[:, position], what="pred_probs"), True


def _check_probabilities(sub: np.ndarray, ids: np.ndarray) -> None:
    """Raise for NaN/inf, negatives or rows that do not sum to 1 (first bad row named)."""
    finite = np.isfinite(sub).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(
            f"pred_probs must be finite; row {int(ids[bad[0]])} holds NaN or inf"
            f"{_more(bad)}. Rows without probabilities (e.g. not covered by out_of_fold) can "
            "be left out with where=~np.isnan(pred_probs).any(axis=1)"
        )
    negative = (sub < 0).any(axis=1)
    if negative.any():
        bad = np.flatnonzero(negative)
        raise ValueError(
            f"pred_probs must be >= 0; row {int(ids[bad[0]])} has "
            f"{float(sub[bad[0]].min()):.6g}{_more(bad)}; {_SOFTMAX_HINT}"
        )
    sums = sub.sum(axis=1)
    off = np.abs(sums - 1.0) > _SUM_TOLERANCE
    if off.any():
        bad = np.flatnonzero(off)
        raise ValueError(
            f"each row of pred_probs must sum to 1 (within {_SUM_TOLERANCE:g}); row "
            f"{int(ids[bad[0]])} sums to {float(sums[bad[0]]):.6g}{_more(bad)}; {_SOFTMAX_HINT}"
        )


def _check_class_order(argmax: np.ndarray, codes: np.ndarray, classes: np.ndarray) -> None:
    """Refuse columns that are clearly in another order than ``classes``.

    The rows' argmax is compared with their labels: if some reordering of the
    columns agrees with the labels on at least half of the rows and on twice as
    many rows as the given order, the order is wrong, not the labels (confident
    learning assumes most labels are right). Subtler mix-ups (two similar
    classes swapped) cannot be told from label noise; a DataFrame with
    class-named columns avoids them.
    """
    k, m = len(classes), len(codes)
    if m < 10 * k:
        return  # too few rows to tell a wrong order from a weak model
    confusion = np.bincount(codes * k + argmax, minlength=k * k).reshape(k, k)
    given = int(np.trace(confusion))
    from scipy.optimize import linear_sum_assignment  # scipy comes with cleanlab's sklearn

    rows, cols = linear_sum_assignment(confusion, maximize=True)
    best = int(confusion[rows, cols].sum())
    if best >= 0.5 * m and best >= 2 * given:
        moved = [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if r != c][:3]
        example = "; ".join(
            f"column {c} predicts rows labelled {_plain(classes[r])!r}" for r, c in moved
        )
        raise ValueError(
            f"pred_probs' columns do not match the order of table.classes {_short(classes)}: "
            f"the argmax equals the label on {given / m:.0%} of rows, but on {best / m:.0%} "
            f"with the columns reordered ({example}). Column j must score table.classes[j]; "
            "reorder the columns, or pass a DataFrame whose columns are the class names"
        )


def _suggested_column(best: np.ndarray, ids: np.ndarray, classes: np.ndarray, n: int) -> Any:
    """The suggested class per row: values of ``classes``, missing outside ``ids``."""
    if ids.size == n:
        return classes[best]
    if classes.dtype.kind in "iufb":
        out = np.full(n, np.nan)
        out[ids] = classes[best].astype(np.float64)
        return out
    full = np.full(n, -1, dtype=np.int64)
    full[ids] = best
    return pd.Categorical.from_codes(full, categories=pd.Index(classes.astype(str)))


def _more(bad: np.ndarray) -> str:
    return f" (and {bad.size - 1} more rows)" if bad.size > 1 else ""


def _short(classes: np.ndarray) -> str:
    shown = [_plain(c) for c in classes[:10]]
    return repr(shown)[:-1] + (", ...]" if len(classes) > 10 else "]")


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value

"""The filter language: parsing, evaluation, errors, and that user text is never run."""

from __future__ import annotations

import builtins
import os

import numpy as np
import pandas as pd
import pytest

from weightwidget import query
from weightwidget.errors import FilterError

N = 8
COLS = {
    "label": np.array([0, 1, 2, 3, 3, 1, 0, 2]),
    "loss": np.array([0.1, 2.5, 3.0, np.nan, 4.0, 0.5, 2.0, 1.0]),
    "caption": pd.Categorical(["A cat", "dog", None, "Cat", "bird", "dog", "cow", "caterpillar"]),
    "flagged": np.array([True, False, False, True, False, False, True, False]),
    "my col": np.arange(8.0),
}

CASES = [
    ("label == 3", [3, 4]),
    ("label != 3", [0, 1, 2, 5, 6, 7]),
    ("label < 2", [0, 1, 5, 6]),
    ("label <= 1", [0, 1, 5, 6]),
    ("label > 2", [3, 4]),
    ("label >= 3", [3, 4]),
    ("3 == label", [3, 4]),
    ("2 < label", [3, 4]),
    ("label == 3 and loss > 2", [4]),
    ("label == 0 or label == 3", [0, 3, 4, 6]),
    ("not label == 0", [1, 2, 3, 4, 5, 7]),
    ("not (label == 0 or label == 1)", [2, 3, 4, 7]),
    ("label in [0, 2]", [0, 2, 6, 7]),
    ("label not in [0, 2]", [1, 3, 4, 5]),
    ("label in []", []),
    ("loss > 2", [1, 2, 4]),  # NaN never compares true
    ("loss >= 2.0", [1, 2, 4, 6]),
    ("loss < 1e0", [0, 5]),
    ("0.4 < loss <= 2.5", [1, 5, 6, 7]),
    ("loss > -1", [0, 1, 2, 4, 5, 6, 7]),
    ("caption == 'dog'", [1, 5]),
    ('caption == "dog"', [1, 5]),
    ("caption != 'dog'", [0, 2, 3, 4, 6, 7]),
    ('caption contains "cat"', [0, 3, 7]),  # case-insensitive
    ('caption contains "CAT"', [0, 3, 7]),
    ('caption in ["cow", "bird"]', [4, 6]),
    ("caption > 'c'", [1, 5, 6, 7]),  # text compares as text: 'A cat' < 'c'
    ("flagged", [0, 3, 6]),
    ("not flagged", [1, 2, 4, 5, 7]),
    ("flagged == true", [0, 3, 6]),
    ("flagged and label == 0", [0, 6]),
    ("`my col` >= 6", [6, 7]),
    ("LABEL_X == 1 or label == 1".replace("LABEL_X", "label"), [1, 5]),
    ("label == 1 OR label == 2", [1, 2, 5, 7]),
    ("((label == 1))", [1, 5]),
    ("label == loss", []),
    ("loss > label", [0, 1, 2, 4, 6]),
    ("true", list(range(N))),
    ("1 == 2", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_filter_selects_expected_rows(text, expected):
    mask = query.evaluate(text, COLS, N)
    assert mask.dtype == bool and mask.shape == (N,)
    assert np.flatnonzero(mask).tolist() == expected


ERRORS = [
    ("", 0, "empty filter"),
    ("label ==", 8, "ends too early"),
    ("label = 3", 6, "use '=='"),
    ("(label == 3", 11, "expected '\\)'"),
    ("label == 3)", 10, "unexpected"),
    ("labl == 3", 0, "unknown column 'labl' \\(did you mean 'label'\\?\\)"),
    ("label == 'x'", 9, "holds numbers"),
    ("caption == 3", 11, "holds text"),
    ("caption contains 3", 17, "quoted string"),
    ("loss contains 'x'", 5, "works on text columns"),
    ("loss", 0, "not true/false"),
    ("label in 3", 9, "expected '\\['"),
    ("label in [1 2]", 12, "expected ',' or '\\]'"),
    ("'unterminated", 0, "unterminated string"),
    ("label == 3 and", 14, "ends too early"),
    ("label == 3 & loss > 1", 11, "unexpected character '&'"),
    ("and", 0, "keyword 'and'"),
    ("12abc == 1", 2, "after number"),
]


@pytest.mark.parametrize(("text", "position", "message"), ERRORS)
def test_errors_name_the_position(text, position, message):
    with pytest.raises(FilterError, match=message) as info:
        query.evaluate(text, COLS, N)
    assert info.value.position == position
    assert f"at position {position}" in str(info.value)


ATTACKS = [
    "__import__('os').system('touch PWNED')",
    "__import__",
    "label.__class__",
    "label.__class__.__bases__",
    "(lambda: 1)()",
    "lambda x: x",
    "__builtins__",
    "open('/etc/passwd')",
    "exec('import os')",
    "eval('1')",
    "label == __import__('os').getcwd()",
    "().__class__.__base__.__subclasses__()",
    "[c for c in ().__class__.__bases__]",
    "label; import os",
    "label == 1 if True else 0",
    "globals()",
    "__dict__ == 1",
    "`__import__`('os')",
    "label @ 2",
    "{}",
    "loss ** 2 > 1",
]


@pytest.mark.parametrize("text", ATTACKS)
def test_code_in_filters_is_rejected_and_never_runs(text, monkeypatch, tmp_path):
    calls = []
    real_import = builtins.__import__

    def spy(name, *args, **kwargs):
        calls.append(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(builtins, "__import__", spy)
    monkeypatch.setattr(builtins, "eval", lambda *a, **k: pytest.fail("eval called"))
    monkeypatch.setattr(builtins, "exec", lambda *a, **k: pytest.fail("exec called"))
    with pytest.raises(FilterError):
        query.evaluate(text, COLS, N)
    assert "os" not in calls
    assert not os.path.exists(tmp_path / "PWNED")


def test_dunder_names_are_unknown_columns_not_attributes():
    with pytest.raises(FilterError, match="unknown column '__class__'"):
        query.evaluate("__class__ == 1", COLS, N)


@pytest.mark.parametrize("module", ["query", "table", "store", "balance"])
def test_no_module_calls_eval_exec_or_dataframe_query(module):
    """Scan the syntax tree: no eval/exec/compile/__import__ call, no .query()/.eval()."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(f"weightwidget.{module}")
    assert spec is not None and spec.origin is not None
    tree = ast.parse(open(spec.origin).read())
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name):
            assert func.id not in {"eval", "exec", "compile", "__import__"}, func.id
        if isinstance(func, ast.Attribute):
            assert func.attr not in {"query", "eval"}, f"{module}: .{func.attr}() call"


def test_nesting_is_bounded():
    text = "(" * 200 + "label == 1" + ")" * 200
    with pytest.raises(FilterError, match="nested more than"):
        query.evaluate(text, COLS, N)
    assert query.evaluate("(" * 20 + "label == 1" + ")" * 20, COLS, N).sum() == 2


def test_overlong_filters_are_rejected():
    with pytest.raises(FilterError, match="longer than"):
        query.parse("label == 1 or " * 2000 + "label == 2")


def test_non_string_filter_is_a_type_error():
    with pytest.raises(TypeError, match="must be a string"):
        query.parse(["label"])  # type: ignore[arg-type]


def test_evaluation_is_vectorised_at_a_million_rows():
    rng = np.random.default_rng(1)
    n = 1_000_000
    cols = {"label": rng.integers(0, 10, n), "loss": rng.random(n) * 5}
    mask = query.evaluate("label == 3 and loss > 2", cols, n)
    np.testing.assert_array_equal(mask, (cols["label"] == 3) & (cols["loss"] > 2))


def test_columns_used():
    node = query.parse("label == 1 and (loss > 2 or not flagged) and caption contains 'x'")
    assert query.columns_used(node) == {"label", "loss", "flagged", "caption"}


@pytest.mark.parametrize("ascending", [True, False])
def test_sort_order_is_stable_with_missing_last(ascending):
    values = np.array([2.0, np.nan, 1.0, 2.0, 3.0, np.nan, 1.0])
    order = query.sort_order(values, ascending=ascending).tolist()
    if ascending:
        assert order == [2, 6, 0, 3, 4, 1, 5]
    else:
        assert order == [4, 0, 3, 2, 6, 1, 5]


def test_sort_order_of_ints_descending_does_not_overflow():
    values = np.array([np.iinfo(np.int64).min, 0, np.iinfo(np.int64).max, 0])
    assert query.sort_order(values, ascending=False).tolist() == [2, 1, 3, 0]


def test_sort_order_of_text_is_alphabetical_with_missing_last():
    values = pd.Categorical(["b", None, "a", "c", "a"], categories=["c", "b", "a"])
    assert query.sort_order(values).tolist() == [2, 4, 0, 3, 1]
    assert query.sort_order(values, ascending=False).tolist() == [3, 0, 2, 4, 1]


def test_class_aggregates():
    codes = np.array([0, 0, 1, 2, 2, 2])
    weights = np.array([1.0, 0.0, 2.0, 0.5, 0.5, 0.0])
    counts, included, sums = query.class_aggregates(codes, 4, weights)
    assert counts.tolist() == [2, 1, 3, 0]
    assert included.tolist() == [1, 1, 2, 0]
    assert sums.tolist() == [1.0, 2.0, 1.0, 0.0]

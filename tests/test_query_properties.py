"""Property-based tests of the filter language (issue 9, acceptance; issue 13, arithmetic).

1. Any string is a boolean mask of the right length or a :class:`FilterError`
   with a position inside the text and a short message; nothing else, in
   bounded time (hypothesis' deadline catches hangs).
2. Differential: filters generated from the grammar over a small table (float64,
   float32, int64, int8, uint64, bool and text columns, NaN, inf, missing text,
   huge integers) give the rows that an independent reference selects. The
   reference below is a per-row Python interpreter of the generated expression,
   written from the documented semantics; it never looks at the filter text.
3. ``quote_column`` spells any column name as a filter that refers to it.

Default example counts fit CI (profile ``ci``); ``HYPOTHESIS_PROFILE=thorough``
runs thousands (tests/conftest.py).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weightwidget import query
from weightwidget._serialize import quote_column
from weightwidget.errors import FilterError

N = 10
F64 = np.array([0.0, -0.0, 1.5, np.nan, np.inf, -np.inf, 0.1, 1e300, -2.5, 3.0])
F32 = np.array([0.1, np.nan, 2.5, 1e38, -1.0, 0.0, 3.0, 0.2, np.nan, 7.0], dtype=np.float32)
I64 = np.array([0, 1, -1, 2**62, -(2**63), 2**53 + 1, 3, 7, 2, 2**63 - 1], dtype=np.int64)
I8 = np.array([0, 1, 2, 3, 0, 1, -2, 3, 0, 127], dtype=np.int8)
U64 = np.array([0, 1, 2**64 - 1, 2**63, 5, 2**53 + 1, 3, 0, 9, 2], dtype=np.uint64)
FLAGS = np.array([True, False, True, False, False, True, True, False, True, False])
S_VALUES = ["a", "A", None, "Straße", "ab", "ΟΔΟΣ", "a\x00b", "", "b", "x'y"]
T_VALUES = ["zz", "b", "STRASSE", None, 'a"b', "é", "É", "c", "ab", "\\"]
COLUMNS: dict[str, Any] = {
    "f": F64,
    "g": F32,
    "i": I64,
    "k": I8,
    "u": U64,
    "b": FLAGS,
    "s": pd.Categorical(S_VALUES),  # categories sorted (pandas' default)
    # categories out of order: the evaluator's unsorted path
    "t": pd.Categorical(T_VALUES, categories=sorted({v for v in T_VALUES if v}, reverse=True)),
    "größe": F64[::-1].copy(),
    "my col": I64[::-1].copy(),
    "and": ~FLAGS,
    "a`b": pd.Categorical(S_VALUES[::-1]),
}
NUMERIC = ["f", "g", "i", "k", "u", "b", "größe", "my col", "and"]
TEXT = ["s", "t", "a`b"]
FLAG_COLUMNS = ["b", "and"]


def _plain(values: pd.Categorical) -> Any:
    """The same text as pandas' Arrow-backed strings (a mostly-distinct column's form)."""
    return pd.array(np.asarray(values.astype(object)), dtype="str")


#: The text columns in each representation (weightwidget._text): every one a
#: Categorical, every one plain strings, and both side by side (text-vs-text).
FORMS: dict[str, dict[str, Any]] = {
    "dictionary": COLUMNS,
    "plain": {k: _plain(v) if k in TEXT else v for k, v in COLUMNS.items()},
    "mixed": {k: _plain(v) if k in ("s", "a`b") else v for k, v in COLUMNS.items()},
}
form = pytest.mark.parametrize("form", list(FORMS))

INT_LITERALS = [0, 1, 2, 3, 7, 127, 128, 2**53, 2**53 + 1, 2**62, 2**63 - 1, 2**63, 2**64, 10**400]
FLOAT_LITERALS = [0.0, 0.1, 0.2, 1.5, 2.5, 1e300, 1e38, 3.4e38, 1e39, 1e-320, math.inf]
TEXT_LITERALS = ["", "a", "A", "ab", "b", "c", "zz", "Straße", "STRASSE", "ß", "ss", "é", "É"]
TEXT_LITERALS += ["ΟΔΟΣ", "ς", "σ", "a\x00b", "\x00", 'a"b', "x'y", "\\", "\n"]

OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


# --------------------------------------------------------------------------- reference
def _python_values(values: Any) -> list[Any]:
    if isinstance(values, pd.Categorical):
        return [None if pd.isna(v) else str(v) for v in values.astype(object)]
    if values.dtype == bool:
        return [int(v) for v in values]
    if values.dtype.kind in "iu":
        return [int(v) for v in values]
    return [float(v) for v in values]


ROWS = {name: _python_values(values) for name, values in COLUMNS.items()}


def _f64(x: Any) -> float:
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


def _literal_for(dtype: Any, value: Any) -> Any:
    """The documented rule: rounded to a float column's precision, unless out of its range."""
    if np.dtype(dtype).kind != "f":
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return value
    with np.errstate(over="ignore"):
        rounded = float(np.dtype(dtype).type(_f64(value)))
    return value if math.isinf(rounded) else rounded  # beyond the range: exactly


@dataclass
class Expr:
    """A generated expression: its text and, for each row, its reference value."""

    text: str
    kind: str  # num | text | cond
    rows: list[Any]
    dtype: Any = None  # num: a numpy dtype, or None for a literal (exact Python number)
    atom: bool = True  # needs no parentheses as an operand of arithmetic
    number_literal: bool = False  # a (negated) number: -3 stays an exact integer
    prec: int = 9  # 1 or, 2 and, 3 not, 4 predicate, 5 sum, 6 product, 9 atom


def _float64_rows(e: Expr) -> list[float]:
    return [_f64(v) for v in e.rows]


def _arith(op: str, a: Expr, b: Expr) -> list[Any]:
    func = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}[op]
    with np.errstate(all="ignore"):
        return [
            float(func(np.float64(x), np.float64(y)))
            for x, y in zip(_float64_rows(a), _float64_rows(b), strict=True)
        ]


def _compare(op: str, a: Expr, b: Expr) -> list[bool]:
    func = OPS[op]
    out = []
    for x, y in zip(a.rows, b.rows, strict=True):
        if a.kind == "text":
            out.append(op == "!=" if x is None or y is None else func(x, y))
        elif a.dtype is None and b.dtype is None:
            out.append(func(x, y))
        elif b.dtype is None:
            out.append(func(x, _literal_for(a.dtype, y)))
        elif a.dtype is None:
            out.append(func(_literal_for(b.dtype, x), y))
        elif np.dtype(a.dtype).kind == "f" or np.dtype(b.dtype).kind == "f":
            out.append(func(_f64(x), _f64(y)))  # numpy promotes to float64
        else:
            out.append(func(x, y))
    return out


# --------------------------------------------------------------------------- generator
_PICKS: dict[str, st.SearchStrategy] = {}


def _pick(options: Any) -> st.SearchStrategy:
    """``st.sampled_from``, built once per set of options (building one is slow)."""
    options = tuple(options)
    key = repr(options)  # by repr: 0 and 0.0 and False must not share a strategy
    if key not in _PICKS:
        _PICKS[key] = st.sampled_from(options)
    return _PICKS[key]


def _kw(draw: Any, word: str) -> str:
    return draw(_pick([word, word.upper(), word.title()]))


def _sp(draw: Any) -> str:
    return draw(_pick([" ", " ", "  ", "\t", "\n"]))


def _tight(draw: Any) -> str:
    """Space around a symbol operator, or none: symbols need no separation."""
    return draw(_pick(["", " ", " "]))


def _name(name: str) -> str:
    if name.isidentifier() and name.lower() not in query.KEYWORDS:
        return name
    return "`" + name.replace("`", "``") + "`"


def _render_number(value: Any) -> str:
    if value == math.inf:
        return "inf"
    return str(value) if isinstance(value, int) else repr(value)


def _render_text(draw: Any, value: str) -> str:
    quote = draw(_pick(["'", '"']))
    out = []
    for ch in value:
        if ch == "\\" or ch == quote:
            out.append("\\" + ch)
        elif ch == "\n":
            out.append(draw(_pick(["\\n", "\n"])))
        else:
            out.append(ch)
    return quote + "".join(out) + quote


def _paren(draw: Any, e: Expr, need: bool) -> str:
    if need or draw(st.integers(0, 9)) == 0:
        return f"({_tight(draw)}{e.text}{_tight(draw)})"
    return e.text


@st.composite
def number_literal(draw: Any) -> Expr:
    value = draw(_pick(INT_LITERALS + FLOAT_LITERALS))
    if draw(st.booleans()):
        value = -value
    text = _render_number(value)
    if text == "-inf" and draw(st.booleans()):
        text = "- inf"
    return Expr(text, "num", [value] * N, None, number_literal=True)


@st.composite
def num_expr(draw: Any, depth: int) -> Expr:
    choice = draw(st.integers(0, 8 if depth > 0 else 3))
    if choice <= 1:
        name = draw(_pick(NUMERIC))
        return Expr(_name(name), "num", ROWS[name], COLUMNS[name].dtype)
    if choice == 2:
        return draw(number_literal())
    if choice == 3:
        value = draw(st.booleans())
        return Expr(_kw(draw, str(value).lower()), "num", [int(value)] * N, None)
    if choice <= 6:  # + - * /
        op = draw(_pick("+-*/"))
        prec = 5 if op in "+-" else 6
        a, b = draw(num_expr(depth - 1)), draw(num_expr(depth - 1))
        # left-associative: the left operand may be a run of the same precedence
        left = _paren(draw, a, a.prec < prec)
        right = _paren(draw, b, b.prec <= prec)
        dtype = None if a.dtype is None and b.dtype is None else np.float64
        text = f"{left}{_tight(draw)}{op}{_tight(draw)}{right}"
        return Expr(text, "num", _arith(op, a, b), dtype, atom=False, prec=prec)
    if choice == 7:  # unary minus
        a = draw(num_expr(depth - 1))
        text = "-" + _paren(draw, a, a.prec < 9)
        if a.number_literal:  # folded by the parser: exact
            return Expr(text, "num", [-v for v in a.rows], None, number_literal=True)
        with np.errstate(all="ignore"):
            rows = [float(-np.float64(v)) for v in _float64_rows(a)]
        dtype = None if a.dtype is None else np.float64
        return Expr(text, "num", rows, dtype)
    a = draw(num_expr(depth - 1))  # abs
    with np.errstate(all="ignore"):
        rows = [float(abs(np.float64(v))) for v in _float64_rows(a)]
    dtype = None if a.dtype is None else np.float64
    return Expr(f"{_kw(draw, 'abs')}({a.text})", "num", rows, dtype)


@st.composite
def text_expr(draw: Any, literal_ok: bool = True) -> Expr:
    if literal_ok and draw(st.integers(0, 2)) == 0:
        value = draw(_pick(TEXT_LITERALS))
        return Expr(_render_text(draw, value), "text", [value] * N, None)
    name = draw(_pick(TEXT))
    return Expr(_name(name), "text", ROWS[name], "text")


def _cond(text: str, rows: list[bool], prec: int = 4) -> Expr:
    return Expr(text, "cond", [bool(r) for r in rows], prec=prec)


def _shown(value: Any) -> Any:
    """A value as the table shows it (float32 0.1 as 0.1), i.e. as a user types it."""
    if isinstance(value, np.floating):
        return float(str(value)) if np.isfinite(value) else float(value)
    return int(value)


@st.composite
def boundary(draw: Any) -> Expr:
    """A column against one of its own values, or a neighbour: where rounding shows."""
    name = draw(_pick(NUMERIC))
    column = Expr(_name(name), "num", ROWS[name], COLUMNS[name].dtype)
    value = _shown(COLUMNS[name][draw(_pick(range(N)))])
    if isinstance(value, float) and math.isnan(value):
        value = 0.5
    value += draw(_pick([0, 0, 0, 1, -1, 0.5, -0.5]))
    if isinstance(value, float) and not math.isfinite(value):
        text = "-inf" if value < 0 else "inf"
    else:
        text = _render_number(value)
    literal = Expr(text, "num", [value] * N, None, number_literal=True)
    op = draw(_pick(list(OPS)))
    a, b = (column, literal) if draw(st.booleans()) else (literal, column)
    return _cond(f"{a.text} {op} {b.text}", _compare(op, a, b))


@st.composite
def predicate(draw: Any, depth: int) -> Expr:
    choice = draw(st.integers(-1, 8))
    op = draw(_pick(list(OPS)))
    if choice == -1:
        return draw(boundary())
    if choice <= 1:
        a, b = draw(num_expr(depth)), draw(num_expr(depth))
        return _cond(f"{a.text}{_tight(draw)}{op}{_tight(draw)}{b.text}", _compare(op, a, b))
    if choice == 2:  # a chain: a < b <= c
        a, b, c = (draw(num_expr(depth)) for _ in range(3))
        op2 = draw(_pick(list(OPS)))
        rows = [x and y for x, y in zip(_compare(op, a, b), _compare(op2, b, c), strict=True)]
        return _cond(f"{a.text} {op} {b.text} {op2} {c.text}", rows)
    if choice == 3:
        a = draw(text_expr(literal_ok=False))
        b = draw(text_expr())
        if draw(st.booleans()):
            a, b = b, a
        return _cond(f"{a.text}{_tight(draw)}{op}{_tight(draw)}{b.text}", _compare(op, a, b))
    if choice == 4:  # numbers in a list
        a = draw(num_expr(depth))
        values = draw(st.lists(number_literal(), max_size=4))
        negate = draw(st.booleans())
        listed = [v.rows[0] for v in values]
        eq = [
            any(_compare("==", a, Expr("", "num", [v] * N, None))[i] for v in listed)
            for i in range(N)
        ]
        rows = [(not x) if negate else x for x in eq]
        kw = (_kw(draw, "not") + " " if negate else "") + _kw(draw, "in")
        items = ", ".join(v.text for v in values)
        return _cond(f"{a.text} {kw} [{items}]", rows)
    if choice == 5:  # text in a list
        a = draw(text_expr(literal_ok=False))
        listed = draw(st.lists(_pick(TEXT_LITERALS), max_size=4))
        negate = draw(st.booleans())
        rows = [(x is not None and x in listed) != negate for x in a.rows]
        kw = (_kw(draw, "not") + " " if negate else "") + _kw(draw, "in")
        items = ",".join(_render_text(draw, v) for v in listed)
        return _cond(f"{a.text} {kw} [{items}]", rows)
    if choice == 6:  # contains, ignoring case
        a = draw(text_expr())
        needle = draw(_pick(TEXT_LITERALS))
        rows = [x is not None and needle.casefold() in x.casefold() for x in a.rows]
        return _cond(f"{a.text} {_kw(draw, 'contains')} {_render_text(draw, needle)}", rows)
    if choice == 7:  # is [not] missing
        a = draw(st.one_of(num_expr(depth), text_expr(literal_ok=False)))
        negate = draw(st.booleans())
        # missing text, or NaN (integer and flag rows are ints, so never)
        missing = [v is None or (isinstance(v, float) and math.isnan(v)) for v in a.rows]
        kw = f"{_kw(draw, 'is')} {_kw(draw, 'not') + ' ' if negate else ''}{_kw(draw, 'missing')}"
        return _cond(f"{a.text} {kw}", [m != negate for m in missing])
    name = draw(_pick([*FLAG_COLUMNS, "true", "false"]))  # a flag on its own
    if name in ("true", "false"):
        return _cond(_kw(draw, name), [name == "true"] * N)
    return _cond(_name(name), [bool(v) for v in ROWS[name]])


@st.composite
def condition(draw: Any, depth: int = 3) -> Expr:
    choice = draw(st.integers(0, 5 if depth > 0 else 0))
    if choice <= 2:
        return draw(predicate(max(depth - 1, 0)))
    if choice == 3:
        a = draw(condition(depth - 1))
        return _cond(
            f"{_kw(draw, 'not')} {_paren(draw, a, a.prec < 3)}", [not x for x in a.rows], 3
        )
    op = "and" if choice == 4 else "or"
    prec = 2 if op == "and" else 1
    items = draw(st.lists(condition(depth - 1), min_size=2, max_size=3))
    combine = all if op == "and" else any
    rows = [combine(item.rows[i] for item in items) for i in range(N)]
    text = f" {_kw(draw, op)} ".join(_paren(draw, item, item.prec <= prec) for item in items)
    return _cond(text, rows, prec)


# --------------------------------------------------------------------------- properties
def _mask_or_filter_error(text: str, form: str) -> np.ndarray | FilterError:
    try:
        mask = query.evaluate(text, FORMS[form], N)
    except FilterError as e:
        assert isinstance(e.position, int) and 0 <= e.position <= len(text), e.position
        assert len(e.reason) <= 400, e.reason
        return e
    assert isinstance(mask, np.ndarray) and mask.dtype == bool and mask.shape == (N,)
    return mask


TOKENS = [
    "f", "g", "i", "s", "t", "b", "`my col`", "`a``b`", "größe", "nope", "and", "or", "not",
    "in", "contains", "is", "missing", "abs", "true", "false", "inf", "nan", "(", ")", "[",
    "]", ",", "+", "-", "*", "/", "==", "!=", "<", "<=", ">", ">=", "=", "0", "1.5", "1e400",
    "9" * 400, "'a'", '"ß"', "'", '"', "`", "\\", "²", "é", "\x00", "__import__", ".", "@",
]  # fmt: skip


@form
@settings(deadline=5000)
@given(st.text())
def test_any_text_is_a_mask_or_a_filter_error(form, text):
    _mask_or_filter_error(text, form)


@form
@settings(deadline=5000)
@given(st.lists(st.sampled_from(TOKENS), max_size=30).map(" ".join))
def test_any_token_soup_is_a_mask_or_a_filter_error(form, text):
    _mask_or_filter_error(text, form)


@st.composite
def nearly_valid(draw: Any) -> str:
    text = draw(condition()).text
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        edit = draw(_pick(["delete", "insert", "replace", "duplicate", "cut"]))
        junk = draw(_pick([*TOKENS, "(", ")", "'", "-", "--", " "]))
        if edit == "delete":
            text = text[:i] + text[i + 1 :]
        elif edit == "insert":
            text = text[:i] + junk + text[i:]
        elif edit == "replace":
            text = text[:i] + junk + text[i + 1 :]
        elif edit == "duplicate":
            text = text[:i] + text[i : i + 8] + text[i:]
        else:
            text = text[:i]
    return text


@form
@settings(deadline=5000)
@given(nearly_valid())
def test_nearly_valid_filters_are_a_mask_or_a_filter_error(form, text):
    _mask_or_filter_error(text, form)


def _check(expr: Expr, form: str = "dictionary") -> None:
    mask = query.evaluate(expr.text, FORMS[form], N)
    expected = np.array(expr.rows, dtype=bool)
    assert np.flatnonzero(mask).tolist() == np.flatnonzero(expected).tolist(), expr.text


# HYPOTHESIS_PROFILE=thorough runs 5,000 examples here: minutes of data generation on a
# shared machine, so more than pyproject's 600 s per test; each example keeps its deadline
@pytest.mark.timeout(1800)
@form
@settings(deadline=5000)
@given(st.lists(condition(), min_size=1, max_size=5))  # several per example: more reach
def test_generated_filters_select_what_the_reference_selects(form, exprs):
    for expr in exprs:
        _check(expr, form)


def _literal(value: Any) -> Expr:
    if isinstance(value, float) and math.isinf(value):
        text = "-inf" if value < 0 else "inf"
    else:
        text = _render_number(value)
    return Expr(text, "num", [value] * N, None, number_literal=True)


@pytest.mark.parametrize("name", NUMERIC)
def test_each_numeric_column_against_its_own_values_and_neighbours(name):
    """Every value (as shown) +- 1, +- 0.5, each operator, either side: the rounding edges."""
    column = Expr(_name(name), "num", ROWS[name], COLUMNS[name].dtype)
    values = {v for v in map(_shown, COLUMNS[name]) if not (isinstance(v, float) and v != v)}
    values |= {v + d for v in list(values) for d in (1, -1, 0.5, -0.5) if math.isfinite(v)}
    values |= {math.inf, -math.inf, 10**400, -(10**400), 1e39, -1e39}
    for value in values:
        literal = _literal(value)
        for op in OPS:
            _check(_cond(f"{column.text} {op} {literal.text}", _compare(op, column, literal)))
            _check(_cond(f"{literal.text} {op} {column.text}", _compare(op, literal, column)))
        hits = _compare("==", column, literal)
        _check(_cond(f"{column.text} in [{literal.text}, 12345]", hits))


@form
@pytest.mark.parametrize("name", TEXT)
def test_each_text_column_against_text_values(name, form):
    column = Expr(_name(name), "text", ROWS[name], "text")
    for value in {*TEXT_LITERALS, *(v for v in ROWS[name] if v is not None), "zzz", "0"}:
        literal = Expr(_quote(value), "text", [value] * N, None)
        for op in OPS:
            _check(_cond(f"{column.text} {op} {literal.text}", _compare(op, column, literal)), form)
            _check(_cond(f"{literal.text} {op} {column.text}", _compare(op, literal, column)), form)
        found = [x is not None and value.casefold() in x.casefold() for x in column.rows]
        _check(_cond(f"{column.text} contains {literal.text}", found), form)
        listed = [x == value for x in column.rows]
        _check(_cond(f"{column.text} in [{literal.text}]", listed), form)
        _check(_cond(f"{column.text} not in [{literal.text}]", [not x for x in listed]), form)
    _check(_cond(f"{column.text} is missing", [x is None for x in column.rows]), form)
    for other in TEXT:  # text against text, each pair of representations
        right = Expr(_name(other), "text", ROWS[other], "text")
        for op in OPS:
            _check(_cond(f"{column.text} {op} {right.text}", _compare(op, column, right)), form)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@given(st.text())
def test_quote_column_spells_every_name_as_a_filter_on_that_column(name):
    text = f"{quote_column(name)} == 1"
    assert query.columns_used(query.parse(text)) == {name}
    mask = query.evaluate(text, {name: np.arange(3)}, 3)
    assert mask.tolist() == [False, True, False]


@pytest.mark.parametrize("name", ["and", "IS", "Missing", "abs", "inf", "NaN", "`", "a``b", ""])
def test_quote_column_handles_keywords_and_back_quotes(name):
    assert query.columns_used(query.parse(f"{quote_column(name)} > 0")) == {name}

"""The filter language, sort orders and per-class aggregates.

Filter strings are tokenized and parsed by a small recursive-descent parser
into an AST, and the AST is evaluated with vectorised numpy over the columns.
User text is never handed to ``eval``, ``exec``, ``pandas.eval`` or
``DataFrame.query``: anything outside the grammar below is a
:class:`~weightwidget.errors.FilterError` that names its position.

Grammar::

    expr       := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | predicate
    predicate  := operand (compare_op operand)*          # chains: 0 < loss <= 2
                | operand ["not"] "in" "[" literals "]"
                | operand "contains" STRING
    operand    := COLUMN | NUMBER | STRING | true | false | "(" expr ")" | "-" NUMBER
    COLUMN     := identifier | `back-quoted name`

Keywords (``and or not in contains true false``) are case-insensitive;
``contains`` is a case-insensitive substring test.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import pandas as pd

from ._checks import did_you_mean
from ._columns import column_kind  # typed where columns are normalised
from .errors import FilterError

__all__ = [
    "class_aggregates",
    "column_kind",
    "columns_used",
    "evaluate",
    "parse",
    "sort_order",
]

MAX_FILTER_LENGTH = 10_000
MAX_DEPTH = 64
KEYWORDS = {"and", "or", "not", "in", "contains", "true", "false"}
COMPARE_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# the same comparison with its operands swapped: 3 < x  <=>  x > 3
SWAPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


# --------------------------------------------------------------------------- tokens
@dataclass(frozen=True)
class Token:
    """One lexical token with its 0-based position in the text."""

    kind: str  # NUMBER STRING IDENT COLUMN OP ( ) [ ] , - END
    value: Any
    pos: int


_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, or raise :class:`FilterError`."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit()):
            m = _NUMBER.match(text, i)
            assert m is not None
            raw = m.group()
            end = m.end()
            if end < n and (text[end].isalpha() or text[end] == "_"):
                raise FilterError(
                    f"unexpected character {text[end]!r} after number {raw!r}",
                    text=text,
                    position=end,
                )
            is_int = re.fullmatch(r"\d+", raw) is not None
            tokens.append(Token("NUMBER", int(raw) if is_int else float(raw), i))
            i = end
            continue
        if ch.isalpha() or ch == "_":
            m = _IDENT.match(text, i)
            assert m is not None
            tokens.append(Token("IDENT", m.group(), i))
            i = m.end()
            continue
        if ch in "\"'":
            value, i_end = _read_string(text, i)
            tokens.append(Token("STRING", value, i))
            i = i_end
            continue
        if ch == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise FilterError("unterminated `column name`", text=text, position=i)
            tokens.append(Token("COLUMN", text[i + 1 : end], i))
            i = end + 1
            continue
        two = text[i : i + 2]
        if two in ("==", "!=", "<=", ">="):
            tokens.append(Token("OP", two, i))
            i += 2
            continue
        if ch in "<>":
            tokens.append(Token("OP", ch, i))
            i += 1
            continue
        if ch == "=":
            raise FilterError("use '==' to compare, not '='", text=text, position=i)
        if ch in "()[],-":
            tokens.append(Token(ch, ch, i))
            i += 1
            continue
        raise FilterError(f"unexpected character {ch!r}", text=text, position=i)
    tokens.append(Token("END", None, n))
    return tokens


def _read_string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == quote:
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise FilterError("unterminated string", text=text, position=start)


# --------------------------------------------------------------------------- AST
@dataclass(frozen=True)
class Column:
    """A column reference."""

    name: str
    pos: int


@dataclass(frozen=True)
class Literal:
    """A number, string or boolean."""

    value: Any
    pos: int


@dataclass(frozen=True)
class Compare:
    """``left op right``."""

    op: str
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True)
class IsIn:
    """``operand [not] in [values]``."""

    operand: Node
    values: tuple[Any, ...]
    negate: bool
    pos: int


@dataclass(frozen=True)
class Contains:
    """``operand contains "text"`` (case-insensitive)."""

    operand: Node
    needle: str
    pos: int


@dataclass(frozen=True)
class BoolOp:
    """``and`` / ``or`` over two or more items."""

    op: str
    items: tuple[Node, ...]
    pos: int


@dataclass(frozen=True)
class Not:
    """``not item``."""

    item: Node
    pos: int


Node = Union[Column, Literal, Compare, IsIn, Contains, BoolOp, Not]  # noqa: UP007 (runtime alias, py3.10)


# --------------------------------------------------------------------------- parser
class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    # helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def is_kw(self, word: str, offset: int = 0) -> bool:
        tok = self.tokens[min(self.i + offset, len(self.tokens) - 1)]
        return tok.kind == "IDENT" and tok.value.lower() == word

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def error(self, message: str, tok: Token | None = None) -> FilterError:
        tok = tok or self.tok
        return FilterError(message, text=self.text, position=tok.pos)

    def describe(self, tok: Token) -> str:
        if tok.kind == "END":
            return "end of filter"
        if tok.kind == "STRING":
            return f"string {tok.value!r}"
        return repr(self.text[tok.pos : tok.pos + max(1, len(str(tok.value)))])

    # grammar
    def parse(self) -> Node:
        if self.tok.kind == "END":
            raise self.error("empty filter; write a condition such as label == 3")
        node = self.parse_or()
        if self.tok.kind != "END":
            tok = self.tok
            if tok.kind == "(":
                raise self.error("function calls are not allowed in filters", tok)
            raise self.error(
                f"unexpected {self.describe(tok)}; expected 'and', 'or' or the end", tok
            )
        return node

    def parse_or(self) -> Node:
        start = self.tok.pos
        items = [self.parse_and()]
        while self.is_kw("or"):
            self.advance()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items), start)

    def parse_and(self) -> Node:
        start = self.tok.pos
        items = [self.parse_not()]
        while self.is_kw("and"):
            self.advance()
            items.append(self.parse_not())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items), start)

    def parse_not(self) -> Node:
        if self.is_kw("not"):
            tok = self.advance()
            self.enter(tok)
            item = self.parse_not()
            self.depth -= 1
            return Not(item, tok.pos)
        return self.parse_predicate()

    def enter(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"filter is nested more than {MAX_DEPTH} levels deep", tok)

    def parse_predicate(self) -> Node:
        left = self.parse_operand()
        tok = self.tok
        if tok.kind == "OP":
            node: Node | None = None
            prev = left
            while self.tok.kind == "OP":
                op_tok = self.advance()
                right = self.parse_operand()
                cmp = Compare(op_tok.value, prev, right, op_tok.pos)
                node = cmp if node is None else BoolOp("and", (node, cmp), op_tok.pos)
                prev = right
            assert node is not None
            return node
        if self.is_kw("in") or (self.is_kw("not") and self.is_kw("in", 1)):
            negate = self.is_kw("not")
            if negate:
                self.advance()
            in_tok = self.advance()
            return IsIn(left, self.parse_list(), negate, in_tok.pos)
        if self.is_kw("contains"):
            kw = self.advance()
            needle = self.advance()
            if needle.kind != "STRING":
                raise self.error('contains needs a quoted string, e.g. contains "cat"', needle)
            return Contains(left, needle.value, kw.pos)
        if tok.kind == "(":
            raise self.error("function calls are not allowed in filters", tok)
        return left

    def parse_list(self) -> tuple[Any, ...]:
        if self.tok.kind != "[":
            raise self.error("expected '[' after 'in', e.g. label in [1, 2]")
        self.advance()
        values: list[Any] = []
        if self.tok.kind == "]":
            self.advance()
            return ()
        while True:
            values.append(self.parse_literal())
            if self.tok.kind == ",":
                self.advance()
                if self.tok.kind == "]":  # trailing comma
                    self.advance()
                    return tuple(values)
                continue
            if self.tok.kind == "]":
                self.advance()
                return tuple(values)
            raise self.error(f"expected ',' or ']' in list, got {self.describe(self.tok)}")

    def parse_literal(self) -> Any:
        tok = self.tok
        if tok.kind == "-":
            self.advance()
            num = self.advance()
            if num.kind != "NUMBER":
                raise self.error("expected a number after '-'", num)
            return -num.value
        if tok.kind in ("NUMBER", "STRING"):
            self.advance()
            return tok.value
        if self.is_kw("true") or self.is_kw("false"):
            self.advance()
            return tok.value.lower() == "true"
        raise self.error(f"expected a number or a quoted string, got {self.describe(tok)}")

    def parse_operand(self) -> Node:
        tok = self.tok
        if tok.kind == "(":
            self.advance()
            self.enter(tok)
            node = self.parse_or()
            self.depth -= 1
            if self.tok.kind != ")":
                raise self.error(f"expected ')', got {self.describe(self.tok)}")
            self.advance()
            return node
        if tok.kind in ("NUMBER", "STRING", "-"):
            return Literal(self.parse_literal(), tok.pos)
        if tok.kind == "COLUMN":
            self.advance()
            return Column(tok.value, tok.pos)
        if tok.kind == "IDENT":
            word = tok.value.lower()
            if word in ("true", "false"):
                self.advance()
                return Literal(word == "true", tok.pos)
            if word in KEYWORDS:
                raise self.error(f"expected a column or a value, got keyword {tok.value!r}")
            self.advance()
            return Column(tok.value, tok.pos)
        if tok.kind == "END":
            raise self.error("filter ends too early; expected a column or a value")
        raise self.error(f"expected a column or a value, got {self.describe(tok)}")


def parse(text: str) -> Node:
    """Parse a filter string into an AST.

    Parameters
    ----------
    text : str
        The filter, e.g. ``'label == 3 and loss > 2'``.

    Returns
    -------
    Node
        The root of the syntax tree (frozen dataclasses).

    Raises
    ------
    FilterError
        With the 0-based position of the first problem.
    """
    if not isinstance(text, str):
        raise TypeError(f"a filter must be a string; got {type(text).__name__}")
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(
            f"filter is longer than {MAX_FILTER_LENGTH} characters",
            text=text[:50],
            position=MAX_FILTER_LENGTH,
        )
    return _parse_cached(text)


@functools.lru_cache(maxsize=256)
def _parse_cached(text: str) -> Node:
    return _Parser(text).parse()


def columns_used(node: Node) -> set[str]:
    """Return the names of the columns a parsed filter refers to."""
    if isinstance(node, Column):
        return {node.name}
    if isinstance(node, Literal):
        return set()
    if isinstance(node, Compare):
        return columns_used(node.left) | columns_used(node.right)
    if isinstance(node, (IsIn, Contains)):
        return columns_used(node.operand)
    if isinstance(node, Not):
        return columns_used(node.item)
    return set().union(*(columns_used(item) for item in node.items))


# --------------------------------------------------------------------------- evaluation
@dataclass
class _Value:
    """An evaluated operand: a whole column, or a scalar literal."""

    kind: str  # numeric | bool | string | image | literal
    data: Any
    pos: int
    name: str | None = None


def evaluate(text_or_node: str | Node, columns: Mapping[str, Any], n_rows: int) -> np.ndarray:
    """Evaluate a filter over ``columns`` and return a boolean mask.

    Parameters
    ----------
    text_or_node : str or Node
        A filter string, or an AST from :func:`parse`.
    columns : mapping of str to array-like
        Column name to values: numeric or bool ndarrays, or
        :class:`pandas.Categorical` for text. Every array has ``n_rows`` rows.
    n_rows : int
        The table's number of rows.

    Returns
    -------
    numpy.ndarray of bool, shape (n_rows,)
    """
    text = text_or_node if isinstance(text_or_node, str) else ""
    node = parse(text_or_node) if isinstance(text_or_node, str) else text_or_node
    return _Evaluator(text, columns, n_rows).mask(node)


class _Evaluator:
    def __init__(self, text: str, columns: Mapping[str, Any], n_rows: int) -> None:
        self.text = text
        self.columns = columns
        self.n = n_rows

    def error(self, message: str, pos: int) -> FilterError:
        return FilterError(message, text=self.text, position=pos)

    def mask(self, node: Node) -> np.ndarray:
        if isinstance(node, BoolOp):
            masks = [self.mask(item) for item in node.items]
            func = np.logical_and if node.op == "and" else np.logical_or
            return functools.reduce(func, masks)
        if isinstance(node, Not):
            return ~self.mask(node.item)
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, IsIn):
            return self.isin(node)
        if isinstance(node, Contains):
            return self.contains(node)
        value = self.value(node)
        if value.kind == "bool":
            return np.asarray(value.data, dtype=bool)
        if value.kind == "literal" and isinstance(value.data, bool):
            return np.full(self.n, value.data)
        if value.kind == "literal":
            raise self.error(
                f"{value.data!r} on its own is not a condition; compare it, e.g. label == "
                f"{value.data!r}",
                value.pos,
            )
        raise self.error(
            f"column {value.name!r} is not true/false; compare it, e.g. {value.name} > 0",
            value.pos,
        )

    def value(self, node: Node) -> _Value:
        if isinstance(node, Literal):
            return _Value("literal", node.value, node.pos)
        if isinstance(node, Column):
            if node.name not in self.columns:
                known = list(self.columns)
                raise self.error(
                    f"unknown column {node.name!r}{did_you_mean(node.name, known)}; "
                    f"known columns: {', '.join(known)}",
                    node.pos,
                )
            data = self.columns[node.name]
            return _Value(column_kind(data), data, node.pos, node.name)
        # a sub-expression used as a value: (a > 1) == (b > 2)
        return _Value("bool", self.mask(node), getattr(node, "pos", 0))

    def compare(self, node: Compare) -> np.ndarray:
        left, right = self.value(node.left), self.value(node.right)
        op = node.op
        if left.kind == "literal" and right.kind != "literal":
            left, right, op = right, left, SWAPPED[op]
        func = COMPARE_OPS[op]
        for side in (left, right):
            if side.kind == "image":
                raise self.error(
                    f"column {side.name!r} holds images and cannot be compared", side.pos
                )
        if left.kind == "literal":  # literal op literal
            try:
                result = bool(func(left.data, right.data))
            except TypeError:
                raise self.error(
                    f"cannot compare {left.data!r} with {right.data!r}", node.pos
                ) from None
            return np.full(self.n, result)
        if right.kind == "literal":
            return self.compare_scalar(left, op, right, node.pos)
        return self.compare_columns(left, op, right, node.pos)

    def compare_scalar(self, col: _Value, op: str, lit: _Value, pos: int) -> np.ndarray:
        func = COMPARE_OPS[op]
        value = lit.data
        if col.kind == "string":
            if not isinstance(value, str):
                raise self.error(
                    f"column {col.name!r} holds text; compare it with a quoted string, "
                    f'e.g. {col.name} == "{value}"',
                    lit.pos,
                )
            cat: pd.Categorical = col.data
            hits = np.asarray(func(np.asarray(cat.categories, dtype=object), value), dtype=bool)
            return _take_codes(cat, hits, missing=(op == "!="))
        if isinstance(value, str):
            raise self.error(
                f"column {col.name!r} holds numbers; compare it with a number, not the "
                f"string {value!r}",
                lit.pos,
            )
        data = np.asarray(col.data)
        if isinstance(value, float) and math.isnan(value):
            return np.zeros(self.n, dtype=bool)
        return np.asarray(func(data, value), dtype=bool)

    def compare_columns(self, left: _Value, op: str, right: _Value, pos: int) -> np.ndarray:
        func = COMPARE_OPS[op]
        if (left.kind == "string") != (right.kind == "string"):
            raise self.error(
                f"cannot compare text column with numeric column "
                f"({left.name or 'expression'} {op} {right.name or 'expression'})",
                pos,
            )
        if left.kind == "string":
            a = np.asarray(left.data.astype(object))
            b = np.asarray(right.data.astype(object))
            ok = pd.notna(a) & pd.notna(b)
            out = np.zeros(self.n, dtype=bool)
            out[ok] = func(a[ok], b[ok])
            return out
        return np.asarray(func(np.asarray(left.data), np.asarray(right.data)), dtype=bool)

    def isin(self, node: IsIn) -> np.ndarray:
        col = self.value(node.operand)
        if col.kind == "literal":
            hit = col.data in node.values
            return np.full(self.n, hit != node.negate)
        if col.kind == "image":
            raise self.error(f"column {col.name!r} holds images and cannot be filtered", col.pos)
        if col.kind == "string":
            bad = [v for v in node.values if not isinstance(v, str)]
            if bad:
                raise self.error(
                    f"column {col.name!r} holds text; list quoted strings, e.g. "
                    f'{col.name} in ["{bad[0]}"]',
                    node.pos,
                )
            cat: pd.Categorical = col.data
            hits = np.asarray(pd.Index(cat.categories).isin(list(node.values)), dtype=bool)
            mask = _take_codes(cat, hits, missing=False)
        else:
            bad = [v for v in node.values if isinstance(v, str)]
            if bad:
                raise self.error(
                    f"column {col.name!r} holds numbers; the list has the string {bad[0]!r}",
                    node.pos,
                )
            mask = np.isin(np.asarray(col.data), np.asarray(node.values, dtype=float))
        return ~mask if node.negate else mask

    def contains(self, node: Contains) -> np.ndarray:
        col = self.value(node.operand)
        if col.kind != "string":
            raise self.error(
                f"'contains' works on text columns; {col.name or 'this value'!r} is {col.kind}",
                node.pos,
            )
        cat: pd.Categorical = col.data
        cats = pd.Series(np.asarray(cat.categories, dtype=object), dtype=object)
        hits = cats.str.lower().str.contains(node.needle.lower(), regex=False)
        return _take_codes(cat, np.asarray(hits.fillna(False), dtype=bool), missing=False)


def _take_codes(cat: pd.Categorical, hits: np.ndarray, *, missing: bool) -> np.ndarray:
    """Map a per-category result onto rows; missing values (code -1) get ``missing``."""
    lookup = np.append(hits, missing)  # code -1 indexes the appended slot
    return lookup[np.asarray(cat.codes)]


# --------------------------------------------------------------------------- sorting
def sort_order(values: Any, *, ascending: bool = True) -> np.ndarray:
    """Return row ids ordered by ``values``: stable (ties by row id), missing last.

    Parameters
    ----------
    values : ndarray or pandas.Categorical
        One column.
    ascending : bool, default=True
        Direction; missing values (NaN, missing text) go last either way.

    Returns
    -------
    numpy.ndarray of int64
    """
    if isinstance(values, pd.Categorical):
        cat = values if values.ordered or _sorted_categories(values) else _sorted(values)
        codes = np.asarray(cat.codes).astype(np.int64)
        missing = codes < 0
        key = codes if ascending else (len(cat.categories) - 1 - codes)
        key = np.where(missing, len(cat.categories), key)
        return np.argsort(key, kind="stable").astype(np.int64, copy=False)
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError("only one-dimensional columns can be sorted")
    if arr.dtype == bool:
        arr = arr.astype(np.int8)
    if arr.dtype.kind == "f":
        key = arr if ascending else -arr  # NaN stays NaN: argsort puts it last
    elif arr.dtype.kind in "iu":
        key = arr if ascending else ~arr  # ~x is monotone decreasing, no overflow
    else:
        raise ValueError(f"cannot sort a column of dtype {arr.dtype}")
    return np.argsort(key, kind="stable").astype(np.int64, copy=False)


def _sorted_categories(cat: pd.Categorical) -> bool:
    cats = cat.categories
    return bool(cats.is_monotonic_increasing)


def _sorted(cat: pd.Categorical) -> pd.Categorical:
    return cat.reorder_categories(sorted(cat.categories))


# --------------------------------------------------------------------------- aggregates
def class_aggregates(
    codes: np.ndarray,
    n_classes: int,
    weights: np.ndarray,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class row counts, included counts (weight > 0) and weight sums.

    Parameters
    ----------
    codes : ndarray of int
        Class index of each row.
    n_classes : int
        Number of classes.
    weights : ndarray of float64
        Current weights.
    mask : ndarray of bool, optional
        Restrict to these rows.

    Returns
    -------
    counts, included, weight_sums : ndarray
        Each of shape (n_classes,).
    """
    if mask is not None:
        codes, weights = codes[mask], weights[mask]
    counts = np.bincount(codes, minlength=n_classes)
    included = np.bincount(codes, weights=(weights > 0), minlength=n_classes).astype(np.int64)
    sums = np.bincount(codes, weights=weights, minlength=n_classes)
    return counts, included, sums

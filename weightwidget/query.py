r"""The filter language, sort orders and per-class aggregates.

Filter strings are tokenized and parsed by a small recursive-descent parser
into an AST, and the AST is evaluated with vectorised numpy (and Arrow compute
for text) over the columns. User text is never handed to ``eval``, ``exec``,
``pandas.eval`` or ``DataFrame.query``: anything outside the grammar below is
a :class:`~weightwidget.errors.FilterError` that names its position, and no
input raises anything else.

Grammar::

    filter     := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | predicate
    predicate  := sum (COMPARE sum)*                   # chains: 0 < loss <= 2
                | sum ["not"] "in" "[" [literal ("," literal)* [","]] "]"
                | sum "contains" STRING
                | sum "is" ["not"] "missing"
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/") unary)*
    unary      := "-" unary | atom
    atom       := COLUMN | NUMBER | STRING | "true" | "false" | "inf"
                | "abs" "(" filter ")" | "(" filter ")"
    literal    := ["-"] (NUMBER | "inf") | STRING | "true" | "false"
    COMPARE    := "==" | "!=" | "<" | "<=" | ">" | ">="
    COLUMN     := identifier | `back-quoted name`      # `` in back-quotes is one `
    NUMBER     := 12 | 1.5 | .5 | 1e-3                  # ASCII digits
    STRING     := "..." | '...'                        # escapes: \\ \" \' \n \t \r

Semantics:

- Keywords (``and or not in contains is missing abs true false inf nan``) are
  case-insensitive; a column named like one is back-quoted. Identifiers are
  Python's (:meth:`str.isidentifier`), so ``größe`` needs no quotes; any other
  name (spaces, ``²``, punctuation) is back-quoted.
- Booleans count as 0 and 1. A number compared with a float column is first
  rounded to that column's precision (``confidence == 0.1`` finds the float32
  values shown as 0.1); one beyond the column's range is larger (or smaller)
  than every finite value. Integer columns compare exactly, at any size.
- Arithmetic (``+ - * /``, unary ``-``, ``abs``) is computed in float64, with
  numpy's rules: ``x / 0`` is ``inf`` (``nan`` for ``0 / 0``).
- NaN (and missing text) makes ``== < <= > >=`` false and ``!=`` true, so
  ``!=`` is always ``not ==``; ``x is missing`` finds NaN in float columns and
  missing text, and never holds for integer or boolean columns. ``nan`` is
  refused as a literal for that reason.
- Text compares as text (code point order); ``contains`` is a case-insensitive
  substring test (:meth:`str.casefold` of both sides: ``"STRASSE"`` contains
  ``"ß"``). Text filters run over the
  distinct values of a column with Arrow compute and then map codes to rows,
  so they cost a few nanoseconds per row.
- Limits: :data:`MAX_FILTER_LENGTH` characters and :data:`MAX_DEPTH` levels of
  nesting (parentheses, ``not``, unary ``-``, ``abs``); longer or deeper
  filters are a :class:`FilterError`.
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

from . import _text
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

#: Longest filter text accepted, in characters.
MAX_FILTER_LENGTH = 10_000
#: Deepest nesting of parentheses, ``not``, unary ``-`` and ``abs`` accepted.
MAX_DEPTH = 64
#: Words of the language, matched case-insensitively; a column named like one is
#: back-quoted (``_serialize.quote_column`` reads this set).
KEYWORDS = frozenset(
    {"and", "or", "not", "in", "contains", "is", "missing", "abs", "true", "false", "inf", "nan"}
)
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
_ARITH = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}
# the int-from-string limit of CPython (sys.get_int_max_str_digits) is 4300 digits
_INT_CHUNK = 4000
_SHOW = 60  # longest piece of the user's text an error message quotes


def _show(value: Any, limit: int = _SHOW) -> str:
    """``repr(value)``, shortened: error messages quote little of the user's text."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        digits = int(value.bit_length() * math.log10(2)) + 1
        return f"{'-' if value < 0 else ''}<a number of about {digits} digits>"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _spell(name: Any) -> str:
    """A column name as a filter spells it (back-quoted when needed), shortened."""
    name = str(name)
    if not (name.isidentifier() and name.lower() not in KEYWORDS):
        name = "`" + name.replace("`", "``") + "`"
    return name if len(name) <= _SHOW else name[: _SHOW - 1] + "…"


def _did_you_mean(name: str, known: list[str]) -> str:
    same = [k for k in known if k.lower() == name.lower()]  # difflib misses LABEL/label
    return f" (did you mean {_show(same[0])}?)" if same else did_you_mean(name, known)


# --------------------------------------------------------------------------- tokens
@dataclass(frozen=True)
class Token:
    """One lexical token with its 0-based position in the text."""

    kind: str  # NUMBER STRING IDENT COLUMN OP ( ) [ ] , + - * / END
    value: Any
    pos: int
    end: int = 0


_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[0-9]+")
_IDENT = re.compile(r"[^\W\d]\w*")  # a fast first guess; str.isidentifier decides
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r"}


def _is_ident_char(ch: str) -> bool:
    return ("a" + ch).isidentifier()


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, or raise :class:`FilterError`."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "0123456789" or (ch == "." and i + 1 < n and text[i + 1] in "0123456789"):
            m = _NUMBER.match(text, i)
            assert m is not None  # the first character is a digit
            raw, end = m.group(), m.end()
            if end < n and _is_ident_char(text[end]):
                raise FilterError(
                    f"unexpected character {text[end]!r} after number {_show(raw)}",
                    text=text,
                    position=end,
                )
            value = _parse_int(raw) if _INTEGER.fullmatch(raw) else float(raw)
            tokens.append(Token("NUMBER", value, i, end))
            i = end
            continue
        if ch == "_" or ch.isidentifier():
            m = _IDENT.match(text, i)
            end = m.end() if m is not None else i + 1
            if not text[i:end].isidentifier():  # \w is wider than Python identifiers
                end = i + 1
                while end < n and _is_ident_char(text[end]):
                    end += 1
            tokens.append(Token("IDENT", text[i:end], i, end))
            i = end
            continue
        if ch in "\"'":
            value, end = _read_string(text, i)
            tokens.append(Token("STRING", value, i, end))
            i = end
            continue
        if ch == "`":
            name, end = _read_quoted_name(text, i)
            tokens.append(Token("COLUMN", name, i, end))
            i = end
            continue
        two = text[i : i + 2]
        if two in ("==", "!=", "<=", ">="):
            tokens.append(Token("OP", two, i, i + 2))
            i += 2
            continue
        if ch in "<>":
            tokens.append(Token("OP", ch, i, i + 1))
            i += 1
            continue
        if ch == "=":
            raise FilterError("use '==' to compare, not '='", text=text, position=i)
        if ch in "()[],+-*/":
            tokens.append(Token(ch, ch, i, i + 1))
            i += 1
            continue
        raise FilterError(f"unexpected character {ch!r}", text=text, position=i)
    tokens.append(Token("END", None, n, n))
    return tokens


def _parse_int(raw: str) -> int:
    """``int(raw)`` at any length (CPython refuses strings over 4300 digits)."""
    digits = raw.lstrip("0") or "0"
    if len(digits) <= _INT_CHUNK:
        return int(digits)
    value = 0
    for k in range(0, len(digits), _INT_CHUNK):
        chunk = digits[k : k + _INT_CHUNK]
        value = value * 10 ** len(chunk) + int(chunk)
    return value


def _read_string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            escaped = _ESCAPES.get(text[i + 1])
            if escaped is None:
                raise FilterError(
                    f"unknown escape '\\{text[i + 1]}' in a string; the escapes are "
                    "\\\\ \\\" \\' \\n \\t \\r (write \\\\ for a backslash)",
                    text=text,
                    position=i,
                )
            out.append(escaped)
            i += 2
            continue
        if ch == quote:
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise FilterError("unterminated string", text=text, position=start)


def _read_quoted_name(text: str, start: int) -> tuple[str, int]:
    """A back-quoted column name; a doubled back-quote inside stands for one."""
    parts: list[str] = []
    i = start + 1
    while True:
        end = text.find("`", i)
        if end < 0:
            raise FilterError("unterminated `column name`", text=text, position=start)
        parts.append(text[i:end])
        if text.startswith("``", end):
            parts.append("`")
            i = end + 2
            continue
        return "".join(parts), end + 1


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
    """``left op right``; a chain ``a < b < c`` is a :class:`BoolOp` of these."""

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
class IsMissing:
    """``operand is [not] missing``: NaN, or missing text."""

    operand: Node
    negate: bool
    pos: int


@dataclass(frozen=True)
class Arith:
    """``items[0] ops[0] items[1] ops[1] ...`` from left to right, in float64.

    One node for a whole run of ``+ -`` (or ``* /``), so a long sum is flat.
    """

    ops: tuple[str, ...]
    items: tuple[Node, ...]
    pos: int


@dataclass(frozen=True)
class Negate:
    """``-item`` (a negative number is a :class:`Literal`)."""

    item: Node
    pos: int


@dataclass(frozen=True)
class Abs:
    """``abs(item)``, the one function."""

    item: Node
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


Node = Union[  # noqa: UP007 (runtime alias, py3.10)
    Column, Literal, Compare, IsIn, Contains, IsMissing, Arith, Negate, Abs, BoolOp, Not
]


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
            return f"string {_show(tok.value)}"
        return _show(self.text[tok.pos : max(tok.end, tok.pos + 1)])

    def enter(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(
                f"filter is nested more than {MAX_DEPTH} levels deep (parentheses, 'not', "
                "'-' and abs() count); simplify it",
                tok,
            )

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
        if not self.is_kw("not"):
            return self.parse_predicate()
        # a run of 'not' is read in a loop (each still counts towards the depth)
        toks = []
        while self.is_kw("not"):
            toks.append(self.advance())
            self.enter(toks[-1])
        node = self.parse_predicate()
        for tok in reversed(toks):
            node = Not(node, tok.pos)
        self.depth -= len(toks)
        return node

    def parse_predicate(self) -> Node:
        start = self.tok.pos
        left = self.parse_sum()
        if self.tok.kind == "OP":
            compares: list[Node] = []
            prev = left
            while self.tok.kind == "OP":
                op_tok = self.advance()
                right = self.parse_sum()
                # a chain shares its middle operands: a < b < c is (a < b) and (b < c)
                compares.append(Compare(op_tok.value, prev, right, op_tok.pos))
                prev = right
            return compares[0] if len(compares) == 1 else BoolOp("and", tuple(compares), start)
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
        if self.is_kw("is"):
            kw = self.advance()
            negate = self.is_kw("not")
            if negate:
                self.advance()
            if not self.is_kw("missing"):
                raise self.error(
                    "expected 'missing' after 'is', e.g. label is missing or label is not "
                    "missing (compare values with ==)"
                )
            self.advance()
            return IsMissing(left, negate, kw.pos)
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
        """A value in an ``in [...]`` list: no columns, no arithmetic."""
        tok = self.tok
        if tok.kind == "-":
            self.advance()
            num = self.tok
            if num.kind == "NUMBER":
                self.advance()
                return -num.value
            if self.is_kw("inf"):
                self.advance()
                return -math.inf
            raise self.error("expected a number after '-'", num)
        if tok.kind in ("NUMBER", "STRING"):
            self.advance()
            return tok.value
        if tok.kind == "IDENT" and tok.value.lower() in ("true", "false", "inf", "nan"):
            return self.parse_atom().value  # type: ignore[union-attr]
        raise self.error(f"expected a number or a quoted string, got {self.describe(tok)}")

    # one Arith node per run of + - (or * /), read in a loop: a long sum stays flat
    def parse_sum(self) -> Node:
        start = self.tok.pos
        items = [self.parse_product()]
        ops: list[str] = []
        while self.tok.kind in ("+", "-"):
            ops.append(self.advance().kind)
            items.append(self.parse_product())
        return items[0] if not ops else Arith(tuple(ops), tuple(items), start)

    def parse_product(self) -> Node:
        start = self.tok.pos
        items = [self.parse_unary()]
        ops: list[str] = []
        while self.tok.kind in ("*", "/"):
            ops.append(self.advance().kind)
            items.append(self.parse_unary())
        return items[0] if not ops else Arith(tuple(ops), tuple(items), start)

    def parse_unary(self) -> Node:
        tok = self.tok
        if tok.kind != "-":
            return self.parse_atom()
        self.advance()
        self.enter(tok)
        item = self.parse_unary()
        self.depth -= 1
        if isinstance(item, Literal) and type(item.value) in (int, float):
            return Literal(-item.value, tok.pos)  # -3 is a number, not arithmetic
        return Negate(item, tok.pos)

    def parse_atom(self) -> Node:
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
        if tok.kind in ("NUMBER", "STRING"):
            self.advance()
            return Literal(tok.value, tok.pos)
        if tok.kind == "COLUMN":
            self.advance()
            return Column(tok.value, tok.pos)
        if tok.kind == "IDENT":
            return self.parse_word(tok)
        if tok.kind == "END":
            raise self.error("filter ends too early; expected a column or a value")
        raise self.error(f"expected a column or a value, got {self.describe(tok)}")

    def parse_word(self, tok: Token) -> Node:
        word = tok.value.lower()
        nxt = self.tokens[self.i + 1]
        if word in ("true", "false"):
            self.advance()
            return Literal(word == "true", tok.pos)
        if word == "inf":
            self.advance()
            return Literal(math.inf, tok.pos)
        if word == "nan":
            raise self.error(
                "nan is never equal to anything; to find NaN or missing values write `x is missing`"
            )
        if word == "abs":
            self.advance()
            if self.tok.kind != "(":
                raise self.error("abs is a function: write abs(x), e.g. abs(a - b) < 0.1")
            paren = self.advance()
            self.enter(paren)
            item = self.parse_or()
            self.depth -= 1
            if self.tok.kind != ")":
                raise self.error(f"expected ')' to close abs(, got {self.describe(self.tok)}")
            self.advance()
            return Abs(item, tok.pos)
        if word in KEYWORDS:
            raise self.error(
                f"expected a column or a value, got keyword {_show(tok.value)}; back-quote a "
                f"column with this name: `{tok.value}`"
            )
        if nxt.kind == "(":
            raise self.error(
                "function calls are not allowed in filters (abs() is the only function)", nxt
            )
        self.advance()
        return Column(tok.value, tok.pos)


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
    TypeError
        If ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"a filter must be a string; got {type(text).__name__}")
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(
            f"filter is longer than {MAX_FILTER_LENGTH:,} characters ({len(text):,}); for "
            "long lists of rows pass a mask or row ids as where= instead",
            text=text,  # over 200 characters: the message shows none of it
            position=MAX_FILTER_LENGTH,
        )
    return _parse_cached(text)


@functools.lru_cache(maxsize=256)
def _parse_cached(text: str) -> Node:
    try:
        return _Parser(text).parse()
    except RecursionError:  # MAX_DEPTH keeps well inside the limit; a deep caller may not
        raise FilterError(
            "filter is nested too deeply to parse here; simplify it", text=text, position=0
        ) from None


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, (Column, Literal)):
        return ()
    if isinstance(node, Compare):
        return (node.left, node.right)
    if isinstance(node, (IsIn, Contains, IsMissing)):
        return (node.operand,)
    if isinstance(node, (Not, Negate, Abs)):
        return (node.item,)
    if isinstance(node, (BoolOp, Arith)):
        return node.items
    raise TypeError(f"not a filter node: {type(node).__name__}")


def columns_used(node: Node) -> set[str]:
    """Return the names of the columns a parsed filter refers to."""
    used: set[str] = set()
    stack = [node]  # a loop, not recursion: any tree depth is fine
    while stack:
        item = stack.pop()
        if isinstance(item, Column):
            used.add(item.name)
        else:
            stack.extend(_children(item))
    return used


# --------------------------------------------------------------------------- evaluation
@dataclass
class _Value:
    """An evaluated operand: a whole column, or a scalar literal.

    ``owned`` arrays were made by this evaluation and may be overwritten in place.
    """

    kind: str  # numeric | bool | string | image | literal
    data: Any
    pos: int
    name: str | None = None
    owned: bool = False

    @property
    def label(self) -> str:
        if self.name is not None:
            return f"column {_show(self.name)}"
        if self.kind == "literal":
            return _show(self.data)
        return "this expression"


def evaluate(text_or_node: str | Node, columns: Mapping[str, Any], n_rows: int) -> np.ndarray:
    """Evaluate a filter over ``columns`` and return a boolean mask.

    Parameters
    ----------
    text_or_node : str or Node
        A filter string, or an AST from :func:`parse`.
    columns : mapping of str to array-like
        Column name to values: numeric or bool ndarrays; text as a
        :class:`pandas.Categorical`, an Arrow-backed string array or any array
        of strings. Every array has ``n_rows`` rows.
    n_rows : int
        The table's number of rows.

    Returns
    -------
    numpy.ndarray of bool, shape (n_rows,)
        A new array.

    Raises
    ------
    FilterError
        If the filter does not parse, names an unknown column or mixes types
        (text with numbers, arithmetic on text); with the position.
    """
    text = text_or_node if isinstance(text_or_node, str) else ""
    node = parse(text_or_node) if isinstance(text_or_node, str) else text_or_node
    evaluator = _Evaluator(text, columns, int(n_rows))
    try:
        with np.errstate(all="ignore"):  # x / 0 is inf, as documented, not a warning
            mask, owned = evaluator.mask(node)
    except RecursionError:
        raise FilterError(
            f"filter is nested too deeply to evaluate (at most {MAX_DEPTH} levels)",
            text=text,
            position=getattr(node, "pos", 0),
        ) from None
    return mask if owned else mask.copy()


class _Evaluator:
    def __init__(self, text: str, columns: Mapping[str, Any], n_rows: int) -> None:
        self.text = text
        self.columns = columns
        self.n = n_rows
        # the value of the last comparison's right side: the next link of a chain
        # (a < b < c) starts with the same node, evaluated once
        self.last: tuple[Node, _Value] | None = None
        self.pairs: dict[tuple[int, int], _text.TextPair] = {}

    def error(self, message: str, pos: int) -> FilterError:
        return FilterError(message, text=self.text, position=pos)

    def full(self, value: bool) -> tuple[np.ndarray, bool]:
        return np.full(self.n, bool(value)), True

    # ---------------------------------------------------------------- conditions
    def mask(self, node: Node) -> tuple[np.ndarray, bool]:
        """The rows where ``node`` holds, and whether the array is ours to modify."""
        if isinstance(node, BoolOp):
            func = np.logical_and if node.op == "and" else np.logical_or
            plan = self.any_contains(node.items) if node.op == "or" else {}
            acc: np.ndarray | None = None
            for i, item in enumerate(node.items):
                if i in plan:
                    needles = plan[i]
                    if needles is None:
                        continue
                    mask, owned = self.contains(item, needles), True  # type: ignore[arg-type]
                else:
                    mask, owned = self.mask(item)
                if acc is None:
                    acc = mask if owned else mask.copy()
                else:
                    func(acc, mask, out=acc)  # in place: no list of masks
            assert acc is not None
            return acc, True
        if isinstance(node, Not):
            mask, owned = self.mask(node.item)
            if owned:
                return np.logical_not(mask, out=mask), True
            return ~mask, True
        if isinstance(node, Compare):
            return self.compare(node), True
        if isinstance(node, IsIn):
            return self.isin(node), True
        if isinstance(node, Contains):
            return self.contains(node), True
        if isinstance(node, IsMissing):
            return self.is_missing(node), True
        value = self.value(node)
        if value.kind == "bool":
            return value.data, value.owned
        if value.kind == "literal" and isinstance(value.data, bool):
            return self.full(value.data)
        if value.kind == "literal":
            raise self.error(
                f"{_show(value.data)} on its own is not a condition; compare it, e.g. "
                f"label == {_show(value.data)}",
                value.pos,
            )
        if value.name is None:
            raise self.error(
                "this arithmetic is a number, not a condition; compare it, e.g. abs(a - b) < 0.1",
                value.pos,
            )
        raise self.error(
            f"column {_show(value.name)} is not true/false; compare it, e.g. "
            f"{_spell(value.name)} > 0",
            value.pos,
        )

    # ---------------------------------------------------------------- values
    def value(self, node: Node) -> _Value:
        if isinstance(node, Literal):
            return _Value("literal", node.value, node.pos)
        if isinstance(node, Column):
            return self.column(node)
        if isinstance(node, (Arith, Negate, Abs)):
            return self.arith(node)
        if not isinstance(node, (BoolOp, Not, Compare, IsIn, Contains, IsMissing)):
            raise TypeError(f"not a filter node: {type(node).__name__}")
        # a condition used as a value: (a > 1) == (b > 2)
        mask, owned = self.mask(node)
        return _Value("bool", mask, node.pos, owned=owned)

    def column(self, node: Column) -> _Value:
        name = node.name
        if name not in self.columns:
            known = [str(k) for k in self.columns]
            listed = ", ".join(_show(k) for k in known[:20])
            more = f" and {len(known) - 20} more" if len(known) > 20 else ""
            raise self.error(
                f"unknown column {_show(name)}{_did_you_mean(name, known)}; known columns: "
                f"{listed}{more}",
                node.pos,
            )
        data = self.columns[name]
        kind = column_kind(data)
        if kind == "string":
            data = _text.as_text(data)
        elif kind in ("numeric", "bool"):
            data = np.asarray(data)
        if len(data) != self.n:
            raise ValueError(f"column {name!r} has {len(data)} rows; the table has {self.n}")
        return _Value(kind, data, node.pos, name)

    def number(self, node: Node) -> _Value:
        """An operand of arithmetic: a numeric or boolean array, or a number."""
        value = self.value(node)
        if value.kind in ("numeric", "bool"):
            return value
        if value.kind == "literal" and not isinstance(value.data, str):
            return value
        what = {"string": "holds text", "image": "holds images"}.get(value.kind, "is text")
        raise self.error(f"arithmetic needs numbers; {value.label} {what}", value.pos)

    def arith(self, node: Arith | Negate | Abs) -> _Value:
        if isinstance(node, Arith):
            acc = self.number(node.items[0])
            for op, item in zip(node.ops, node.items[1:], strict=True):
                acc = _binary(_ARITH[op], acc, self.number(item), node.pos)
            return acc
        value = self.number(node.item)
        func = np.negative if isinstance(node, Negate) else np.absolute
        if value.kind == "literal":
            return _Value("literal", float(func(_as_float(value.data))), node.pos)
        out = value.data if value.owned and value.data.dtype == np.float64 else None
        return _Value("numeric", func(value.data, out=out, dtype=np.float64), node.pos, owned=True)

    # ---------------------------------------------------------------- predicates
    def compare(self, node: Compare) -> np.ndarray:
        if self.last is not None and self.last[0] is node.left:
            left = self.last[1]
        else:
            left = self.value(node.left)
        right = self.value(node.right)
        self.last = (node.right, right)
        op = node.op
        if left.kind == "literal" and right.kind != "literal":
            left, right, op = right, left, SWAPPED[op]
        for side in (left, right):
            if side.kind == "image":
                raise self.error(f"{side.label} holds images and cannot be compared", side.pos)
        func = COMPARE_OPS[op]
        if left.kind == "literal":  # literal op literal
            a, b = left.data, right.data
            if isinstance(a, str) != isinstance(b, str):
                raise self.error(f"cannot compare {_show(a)} with {_show(b)}", node.pos)
            return np.full(self.n, bool(func(a, b)))
        if left.kind == "string" or right.kind == "string":
            return self.compare_text(left, op, right, node.pos)
        if right.kind == "literal":
            if isinstance(right.data, str):
                what = "true/false" if left.kind == "bool" else "numbers"
                raise self.error(
                    f"{left.label} holds {what}; compare it with a number, not the string "
                    f"{_show(right.data)}",
                    right.pos,
                )
            return _compare_scalar(left.data, op, right.data, self.n)
        return np.asarray(func(left.data, right.data), dtype=bool)

    def compare_text(self, left: _Value, op: str, right: _Value, pos: int) -> np.ndarray:
        if left.kind != "string":  # a number or flag on the left, text on the right
            raise self.error(
                f"cannot compare {left.label} with text {right.label}; compare text with text",
                pos,
            )
        if right.kind == "literal":
            if not isinstance(right.data, str):
                raise self.error(
                    f"{left.label} holds text; compare it with a quoted string, e.g. "
                    f'{_spell(left.name)} == "{_show(right.data, 20)}"',
                    right.pos,
                )
            return left.data.compare(op, right.data)
        if right.kind != "string":
            raise self.error(
                f"cannot compare text {left.label} with {right.label}; compare text with text",
                pos,
            )
        key = (id(left.data), id(right.data))
        pair = self.pairs.get(key)
        if pair is None:  # a chain (a < b < c) or an or of comparisons reuses it
            pair = self.pairs[key] = _text.TextPair(left.data, right.data)
        return pair.compare(op)

    def isin(self, node: IsIn) -> np.ndarray:
        col = self.value(node.operand)
        texts = [v for v in node.values if isinstance(v, str)]
        if col.kind == "literal":
            same = [v for v in node.values if isinstance(v, str) == isinstance(col.data, str)]
            return np.full(self.n, (col.data in same) != node.negate)
        if col.kind == "image":
            raise self.error(f"{col.label} holds images and cannot be filtered", col.pos)
        if col.kind == "string":
            if len(texts) != len(node.values):
                bad = next(v for v in node.values if not isinstance(v, str))
                raise self.error(
                    f"{col.label} holds text; list quoted strings, e.g. "
                    f'{_spell(col.name)} in ["{_show(bad, 20)}"]',
                    node.pos,
                )
            mask = col.data.isin(tuple(texts))
        else:
            if texts:
                raise self.error(
                    f"{col.label} holds numbers; the list has the string {_show(texts[0])}",
                    node.pos,
                )
            mask = _isin_numbers(np.asarray(col.data), node.values)
        if node.negate:
            np.logical_not(mask, out=mask)
        return mask

    def contains(self, node: Contains, needles: list[str] | None = None) -> np.ndarray:
        """``operand contains needle`` (or any of ``needles``, from :meth:`any_contains`)."""
        col = self.value(node.operand)
        needles = [node.needle] if needles is None else needles
        if col.kind == "literal" and isinstance(col.data, str):
            return np.full(self.n, any(x.casefold() in col.data.casefold() for x in needles))
        if col.kind != "string":
            raise self.error(f"'contains' works on text columns; {col.label} is not text", node.pos)
        return col.data.contains(needles)

    def any_contains(self, items: tuple[Node, ...]) -> dict[int, list[str] | None]:
        """Plan ``x contains "a" or x contains "b" or ...`` as one pass per column.

        Maps the index of each group's first item to the group's needles, and the
        indices of its other items to None (covered by the first).
        """
        groups: dict[str, list[int]] = {}
        for i, item in enumerate(items):
            if isinstance(item, Contains) and isinstance(item.operand, Column):
                groups.setdefault(item.operand.name, []).append(i)
        plan: dict[int, list[str] | None] = {}
        for members in groups.values():
            if len(members) > 1:
                plan[members[0]] = [items[i].needle for i in members]  # type: ignore[union-attr]
                plan.update(dict.fromkeys(members[1:]))
        return plan

    def is_missing(self, node: IsMissing) -> np.ndarray:
        col = self.value(node.operand)
        if col.kind == "string":
            mask = col.data.missing()
        elif col.kind == "literal":
            mask = np.full(self.n, isinstance(col.data, float) and math.isnan(col.data))
        elif col.kind == "numeric" and col.data.dtype.kind == "f":
            mask = np.isnan(col.data)
        else:  # integers, flags and images have no missing values
            mask = np.zeros(self.n, dtype=bool)
        if node.negate:
            np.logical_not(mask, out=mask)
        return mask


# --------------------------------------------------------------------------- numbers
def _as_float(value: Any) -> float:
    """A literal as float64; integers beyond its range are +-inf."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _binary(func: Any, a: _Value, b: _Value, pos: int) -> _Value:
    """``func(a, b)`` in float64, into an array this evaluation owns when there is one."""
    if a.kind == "literal" and b.kind == "literal":
        result = func(np.float64(_as_float(a.data)), np.float64(_as_float(b.data)))
        return _Value("literal", float(result), pos)
    x = np.float64(_as_float(a.data)) if a.kind == "literal" else a.data
    y = np.float64(_as_float(b.data)) if b.kind == "literal" else b.data
    out = None
    for side in (a, b):
        if side.owned and side.data.dtype == np.float64:
            out = side.data
            break
    return _Value("numeric", func(x, y, out=out, dtype=np.float64), pos, owned=True)


def _const(n: int, value: bool) -> np.ndarray:
    return np.full(n, bool(value))


def _compare_scalar(arr: np.ndarray, op: str, value: Any, n: int) -> np.ndarray:
    """``arr op value`` for a numeric or boolean column and a number, exactly.

    Float columns see the number rounded to their precision; integer columns
    compare exactly with any integer and any float.
    """
    func = COMPARE_OPS[op]
    if isinstance(value, bool):
        value = int(value)
    if arr.dtype == bool:
        arr = arr.view(np.uint8)
    if arr.dtype.kind == "f":
        if isinstance(value, float) and math.isnan(value):
            return _const(n, op == "!=")
        rounded = _round_to(value, arr.dtype)
        if rounded is not None:
            return np.asarray(func(arr, rounded), dtype=bool)
        # finite, but beyond the column's range: past every finite value, short of inf
        if op in ("==", "!="):
            return _const(n, op == "!=")
        if value > 0:
            return arr < np.inf if op in ("<", "<=") else arr == np.inf
        return arr == -np.inf if op in ("<", "<=") else arr > -np.inf
    if isinstance(value, float):
        if math.isnan(value):
            return _const(n, op == "!=")
        if math.isinf(value):
            return _const(n, func(0, value))
        if not value.is_integer():  # x < 2.5  <=>  x <= 2 for integers
            if op in ("==", "!="):
                return _const(n, op == "!=")
            if op in ("<", "<="):
                op, value = "<=", math.floor(value)
            else:
                op, value = ">=", math.ceil(value)
            func = COMPARE_OPS[op]
        value = int(value)
    info = np.iinfo(arr.dtype)
    if value < info.min:
        return _const(n, func(int(info.min), value))
    if value > info.max:
        return _const(n, func(int(info.max), value))
    return np.asarray(func(arr, arr.dtype.type(value)), dtype=bool)


def _round_to(value: int | float, dtype: np.dtype) -> Any:
    """``value`` as a scalar of the float ``dtype``, or None if finite and out of range."""
    as_float = _as_float(value)
    with np.errstate(over="ignore"):
        rounded = dtype.type(as_float)
    if math.isinf(rounded) and not (isinstance(value, float) and math.isinf(value)):
        return None
    return rounded


def _isin_numbers(arr: np.ndarray, values: tuple[Any, ...]) -> np.ndarray:
    """``arr in values`` with the equality of :func:`_compare_scalar`."""
    if arr.dtype == bool:
        arr = arr.view(np.uint8)
    keep: list[Any] = []
    for value in values:
        value = int(value) if isinstance(value, bool) else value
        if arr.dtype.kind == "f":
            if isinstance(value, float) and math.isnan(value):
                continue
            rounded = _round_to(value, arr.dtype)
            if rounded is not None:
                keep.append(rounded)
            continue
        if isinstance(value, float):
            if not value.is_integer():  # also NaN and inf
                continue
            value = int(value)
        info = np.iinfo(arr.dtype)
        if info.min <= value <= info.max:
            keep.append(value)
    keep = list(dict.fromkeys(keep))
    if len(keep) > 16:
        return np.isin(arr, np.array(keep, dtype=arr.dtype))
    # a few values: passes of == beat np.isin, whose integer table costs ~15 ms at 1M rows
    mask = np.zeros(len(arr), dtype=bool)
    for value in keep:
        mask |= arr == arr.dtype.type(value)
    return mask


# --------------------------------------------------------------------------- text
# A text column is a Categorical (codes + distinct values) or plain Arrow-backed
# strings; weightwidget._text gives both one interface (vectorised, linear in rows).


# --------------------------------------------------------------------------- sorting
def sort_order(values: Any, *, ascending: bool = True) -> np.ndarray:
    """Return row ids ordered by ``values``: stable (ties by row id), missing last.

    Parameters
    ----------
    values : ndarray, pandas.Categorical or Arrow-backed string array
        One column (text sorts by code point).
    ascending : bool, default=True
        Direction; missing values (NaN, missing text) go last either way.

    Returns
    -------
    numpy.ndarray of int64
    """
    if isinstance(values, pd.Categorical) and values.ordered:  # its own order, not text's
        codes = np.asarray(values.codes).astype(np.int64)
        key = codes if ascending else (len(values.categories) - 1 - codes)
        key = np.where(codes < 0, len(values.categories), key)
        return np.argsort(key, kind="stable").astype(np.int64, copy=False)
    if isinstance(values, _text.TextColumn) or _text.is_text(values):
        return _text.as_text(values).sort_order(ascending=ascending)
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
        Class index of each row; rows with a negative code (unlabelled) are left out.
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
    if codes.size and int(codes.min()) < 0:
        codes, weights = codes[codes >= 0], weights[codes >= 0]
    codes = codes.astype(np.intp, copy=False)  # once: bincount casts small ints per call
    counts = np.bincount(codes, minlength=n_classes)
    # weights are >= 0, and excluded rows (weight 0) are usually few: count those
    excluded = np.bincount(codes[weights <= 0], minlength=n_classes)
    sums = np.bincount(codes, weights=weights, minlength=n_classes)
    return counts, (counts - excluded).astype(np.int64), sums

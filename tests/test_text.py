"""Text columns in either representation (weightwidget._text; issue 10 point 3, issue 14).

Mostly-distinct text stays the user's Arrow strings (no dictionary encoding at
ingestion); text with few values is a Categorical. Every consumer gives the same
answers for both: filters, sorts and their first pages, pages, column summaries,
exports, fingerprints, base files and ``open`` in a new process, and stores
written when every text column was a dictionary (fingerprint method 2).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import weightwidget as ww
from weightwidget import _columns, _serialize, _text, query, view
from weightwidget.errors import StoreMismatchError

from .conftest import run_json
from .data.make_legacy_stores import text2_frame

LEGACY = Path(__file__).resolve().parent / "data" / "legacy_stores"
TRICKY = [
    "Straße",
    "STRASSE",
    "ΟΔΟΣ",
    "ς",
    "İstanbul",
    "ﬁle",
    "Ꭰ",
    "ǅ",
    "é",
    "É",
    "a\x00b",
    "",
    "😀",
]


def _frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 4, n)
    words = np.array(["cat", "dog", "Bird", "ﬁsh"])
    caption = np.array(
        [f"{words[c]} {v}" for c, v in zip(label, rng.integers(0, n // 2, n), strict=True)],
        dtype=object,
    )
    caption[rng.choice(n, 7, replace=False)] = None
    caption[: len(TRICKY)] = TRICKY
    return pd.DataFrame(
        {
            "label": label,
            "caption": pd.Series(caption, dtype="str"),
            "loss": rng.gamma(2.0, 1.0, n),
        }
    )


def _build(df: pd.DataFrame, store: Path, form: str, monkeypatch) -> ww.WeightTable:
    with monkeypatch.context() as m:
        m.setattr(_text, "MAX_DISTINCT_SHARE", 1.0 if form == "dictionary" else 0.0)
        return ww.WeightTable.from_pandas(df, label="label", store=store)


@pytest.fixture
def pair(tmp_path, monkeypatch):
    """The same frame as a table of each representation."""
    df = _frame()
    plain = _build(df, tmp_path / "plain", "plain", monkeypatch)
    dictionary = _build(df, tmp_path / "dict", "dictionary", monkeypatch)
    assert isinstance(plain.column("caption"), pd.arrays.ArrowStringArray)
    assert isinstance(dictionary.column("caption"), pd.Categorical)
    return df, plain, dictionary


def _reference_order(values: list, ascending: bool) -> list[int]:
    present = [i for i, v in enumerate(values) if v is not None]
    key = {i: values[i].encode("utf-8") for i in present}  # code point order
    if ascending:
        order = sorted(present, key=lambda i: key[i])
    else:  # stable: equal values keep row order
        order = sorted(present, key=lambda i: key[i], reverse=True)
        groups: dict[bytes, list[int]] = {}
        for i in order:
            groups.setdefault(key[i], []).append(i)
        order = [i for k in dict.fromkeys(key[i] for i in order) for i in sorted(groups[k])]
    return order + [i for i, v in enumerate(values) if v is None]


# ---------------------------------------------------------------- the rule


def test_the_sample_keeps_mostly_distinct_text_plain_and_few_values_a_dictionary(
    store_path, monkeypatch
):
    monkeypatch.setattr(_text, "SAMPLE_ROWS", 2000)  # the sampled path, at a test's size
    n = 20_000
    rng = np.random.default_rng(3)
    tail = np.array([f"rare {i}" for i in range(n)], dtype=object)
    skewed = np.where(rng.random(n) < 0.6, "unknown", tail)  # 60% one value, a long tail
    df = pd.DataFrame(
        {
            "label": pd.Series([f"class {i}" for i in range(n)], dtype="str"),  # all distinct
            "caption": pd.Series([f"truck {i}" for i in rng.permutation(n)], dtype="str"),
            "word": pd.Series(np.array(["a", "b", "c"])[rng.integers(0, 3, n)], dtype="str"),
            "skewed": pd.Series(skewed, dtype="str"),
            "id": np.array([f"{i:08d}" for i in range(n)]),  # numpy unicode
        }
    )
    t = ww.WeightTable.from_pandas(df, label="label", store=store_path)
    for table in (t, ww.WeightTable.open(store_path)):
        assert isinstance(table.column("label"), pd.Categorical)  # labels: always codes
        assert isinstance(table.column("word"), pd.Categorical)
        for name in ("caption", "skewed", "id"):
            assert isinstance(table.column(name), pd.arrays.ArrowStringArray), name
    assert isinstance(
        _text.encode(pa.array(["x", "y", "x", "x", "y", "x", "y", "x"])), pd.Categorical
    )


def test_plain_text_is_the_users_arrow_data_without_a_copy(store_path):
    df = _frame()
    t = ww.WeightTable.from_pandas(df, label="label", store=store_path)

    def data(values):
        arr = pa.array(values)
        return (arr.chunk(0) if isinstance(arr, pa.ChunkedArray) else arr).buffers()[2]

    assert data(t.column("caption")).address == data(df["caption"].array).address


# ---------------------------------------------------------------- consumers agree


FILTERS = [
    'caption == "cat 3"',
    'caption != "cat 3"',
    'caption < "dog"',
    'caption >= "Straße"',
    'caption > ""',
    'caption <= "ﬁsh 9"',
    'caption in ["Bird 5", "cat 1", "nope", "STRASSE"]',
    'caption not in ["Bird 5"]',
    'caption contains "SS"',
    'caption contains "ß"',
    'caption contains "σ"',
    'caption contains "fi"',
    'caption contains "1" or caption contains "cat"',
    "caption is missing",
    "caption is not missing and label == 2",
    "not (caption < 'cat')",
]


@pytest.mark.parametrize("text", FILTERS)
def test_filters_on_plain_text_match_the_dictionary_and_python(pair, text):
    df, plain, dictionary = pair
    got = plain.select(text).tolist()
    assert got == dictionary.select(text).tolist()
    rows = [None if pd.isna(v) else v for v in df["caption"].astype(object)]
    if text == 'caption contains "SS"':  # casefold, as Python does it
        assert got == [i for i, v in enumerate(rows) if v is not None and "ss" in v.casefold()]
    if text == 'caption < "dog"':
        assert got == [i for i, v in enumerate(rows) if v is not None and v < "dog"]


def test_text_against_text_across_representations(pair):
    df, plain, _ = pair
    other = df["caption"].astype(object).to_numpy()[::-1].copy()
    columns = {
        "a": plain.column("caption"),
        "b": pd.Categorical(other),
        "c": pd.array(other, dtype="str"),
    }
    rows_a = [None if pd.isna(v) else v for v in df["caption"].astype(object)]
    rows_b = [None if pd.isna(v) else v for v in other]
    for right in ("b", "c"):
        for op, func in (("<", str.__lt__), ("==", str.__eq__), ("!=", str.__ne__)):
            mask = query.evaluate(f"a {op} {right}", columns, len(df))
            expected = [
                op == "!=" if x is None or y is None else func(x, y)
                for x, y in zip(rows_a, rows_b, strict=True)
            ]
            assert mask.tolist() == expected, (op, right)


@pytest.mark.parametrize("ascending", [True, False])
def test_sorts_and_first_pages_match_python_and_the_dictionary(pair, ascending):
    df, plain, dictionary = pair
    rows = [None if pd.isna(v) else v for v in df["caption"].astype(object)]
    expected = _reference_order(rows, ascending)
    assert plain.sort_order("caption", ascending=ascending).tolist() == expected
    assert dictionary.sort_order("caption", ascending=ascending).tolist() == expected
    for table in (plain, dictionary):
        # the first page comes from the O(n) top-k; later ones from the full sort
        v = view.TableView(table, filter="label != 1", sort_by="caption", ascending=ascending)
        matched = [i for i in expected if df["label"][i] != 1]
        assert v.ids(0, 50).tolist() == matched[:50]
        assert v.ids(200, 260).tolist() == matched[200:260]
        head = view.top_order(table.column("caption"), None, ascending, 40)
        assert head.tolist() == expected[:40]


@given(
    values=st.lists(
        st.one_of(st.none(), st.sampled_from(["a", "ab", "b", "", "ß", "a\x00"]), st.text()),
        min_size=1,
        max_size=60,
    ),
    k=st.integers(1, 20),
    ascending=st.booleans(),
    data=st.data(),
)
def test_head_is_the_start_of_the_stable_sort(values, k, ascending, data):
    strings = pd.array(
        [None if v is None else v.encode("utf-8", "replace").decode("utf-8") for v in values],
        dtype="str",
    )
    rows = np.array(
        sorted(data.draw(st.sets(st.integers(0, len(values) - 1), min_size=1))), dtype=np.int64
    )
    for column in (strings, pd.Categorical(np.asarray(strings.astype(object)))):
        text = _text.as_text(column)
        order = text.sort_order(ascending=ascending)
        assert text.head(None, ascending=ascending, k=k).tolist() == order[:k].tolist()
        within = order[np.isin(order, rows)]
        assert text.head(rows, ascending=ascending, k=k).tolist() == within[:k].tolist()


def test_pages_summaries_and_picked_values_match_the_dictionary(pair):
    df, plain, dictionary = pair
    spec = [{"name": "caption", "kind": "string", "role": "data"}]
    ids = np.array([0, 1, 2, 3, 40, 599, 5])
    pages = [_serialize.encode_rows(t, ids, spec)[0]["columns"][0]["values"] for t in pair[1:]]
    assert pages[0] == pages[1]
    assert pages[0][:4] == TRICKY[:4]
    for text in ("", "label == 2", 'caption contains "cat"'):
        summaries = []
        for table in (plain, dictionary):
            v = view.TableView(table, filter=text)
            (summary,) = v.summaries(["caption"])
            summaries.append(summary)
        a, b = summaries
        assert {k: a[k] for k in ("matched", "missing", "distinct", "other")} == {
            k: b[k] for k in ("matched", "missing", "distinct", "other")
        }
        assert sorted((x["value"], x["count"]) for x in a["values"]) == sorted(
            (x["value"], x["count"]) for x in b["values"]
        )
        counts = df["caption"][plain.select(text) if text else slice(None)].value_counts()
        assert a["distinct"] == len(counts)
        assert max(x["count"] for x in a["values"]) == counts.max()
    v = view.TableView(plain)
    picked = v.condition("caption", value="Straße")
    assert picked == 'caption == "Straße"'
    with pytest.raises(ValueError, match="has no value"):
        v.condition("caption", value="not there")


def test_df_export_and_column_agree(pair, tmp_path):
    df, plain, dictionary = pair
    pd.testing.assert_series_equal(
        plain.df["caption"], dictionary.df["caption"].astype("str"), check_names=False
    )
    for table, name in ((plain, "p"), (dictionary, "d")):
        out = tmp_path / f"{name}.parquet"
        table.export(out, where="label == 2")
        back = pd.read_parquet(out)
        expected = df["caption"][df["label"] == 2].astype(object).tolist()
        got = back["caption"].astype(object).tolist()
        assert [None if pd.isna(v) else v for v in got] == [
            None if pd.isna(v) else v for v in expected
        ]


# ---------------------------------------------------------------- identity and storage


def test_fingerprints_do_not_depend_on_the_representation(tmp_path, monkeypatch):
    df = _frame()
    t = _build(df, tmp_path / "s", "dictionary", monkeypatch)
    t.set_weights([0, 1], 2.0)
    again = _build(df, tmp_path / "s", "plain", monkeypatch)  # if_exists="reuse"
    assert again.revision == 1
    texts = [df["caption"].array, pd.Categorical(df["caption"].astype(object))]
    texts.append(
        pa.chunked_array([pa.array(df["caption"].array)[:100], pa.array(df["caption"].array)[100:]])
    )
    hashes = {_columns.column_hash(v, "string") for v in texts}
    assert len(hashes) == 1
    changed = df.assign(caption=df["caption"].where(df.index != 9, "changed"))
    with pytest.raises(StoreMismatchError, match="'caption' differ"):
        _build(changed, tmp_path / "s", "plain", monkeypatch)


def test_plain_text_opens_in_a_new_process(tmp_path, monkeypatch):
    df = _frame()
    t = _build(df, tmp_path / "s", "plain", monkeypatch)
    t.set_weights('caption contains "cat"', 0.5)
    got = run_json(
        f"""
        import json, numpy as np, pandas as pd, weightwidget as ww
        from weightwidget import _serialize
        t = ww.WeightTable.open({str(tmp_path / "s")!r})
        col = t.column("caption")
        spec = [{{"name": "caption", "kind": "string", "role": "data"}}]
        page = _serialize.encode_rows(t, np.arange(4), spec)
        print(json.dumps([type(col).__name__, t.select('caption contains "cat"').tolist(),
                          page[0]["columns"][0]["values"], t.sort_order("caption")[:5].tolist(),
                          float(t.weights.sum())]))
        """
    )
    assert got[0] == "ArrowStringArray"
    assert got[1] == t.select('caption contains "cat"').tolist()
    assert got[2] == TRICKY[:4]
    assert got[3] == t.sort_order("caption")[:5].tolist()
    assert got[4] == float(t.weights.sum())


def _copy(name: str, tmp_path: Path) -> Path:
    dst = tmp_path / name
    shutil.copytree(LEGACY / name, dst)
    return dst


def test_a_method_2_store_opens_its_long_dictionary_as_plain_text(tmp_path):
    store = _copy("text2", tmp_path)
    t = ww.WeightTable.open(store)
    df = text2_frame()
    assert t.revision == 1
    assert isinstance(t.column("caption"), pd.arrays.ArrowStringArray)  # 398 of 400 distinct
    assert isinstance(t.column("word"), pd.Categorical)
    assert isinstance(t.column("label"), pd.Categorical)
    assert t.column("caption").tolist() == df["caption"].tolist()
    assert t.select("caption is missing").tolist() == [3, 50]
    assert t.select("caption contains 'of a'").size == int((t.weights == 0.5).sum())


def test_rebuilding_a_method_2_store_reuses_it(tmp_path):
    store = _copy("text2", tmp_path)
    t = ww.WeightTable.from_pandas(text2_frame(), label="label", store=store)
    assert t.revision == 1  # the same data, reused (plain text hashed by method 2)
    changed = text2_frame()
    changed.loc[7, "caption"] = "something else"
    with pytest.raises(StoreMismatchError, match="'caption' differ"):
        ww.WeightTable.from_pandas(changed, label="label", store=store)


def test_an_unnamed_table_finds_its_method_2_default_store(tmp_path, monkeypatch):
    meta = json.loads((LEGACY / "text2" / "meta.json").read_text())
    assert meta["fingerprint_method"] == 2
    default = tmp_path / ".weightwidget" / f"table-{meta['fingerprint'][:12]}"
    shutil.copytree(LEGACY / "text2", default)
    monkeypatch.chdir(tmp_path)
    t = ww.WeightTable.from_pandas(text2_frame(), label="label")
    assert t.revision == 1
    assert Path(t.store_url).resolve() == default.resolve()


# ---------------------------------------------------------------- casefold


@given(st.lists(st.one_of(st.none(), st.text(), st.sampled_from(TRICKY)), max_size=40))
def test_casefold_is_pythons_without_a_call_per_row(values):
    values = [None if v is None else v.encode("utf-8", "replace").decode("utf-8") for v in values]
    folded = _text.casefold(pa.array(values, type=pa.large_string())).to_pylist()
    assert folded == [b"" if v is None else v.casefold().encode("utf-8") for v in values]


# ---------------------------------------------------------------- groups (summaries)


def _check_groups(values: list) -> None:
    codes, labels = _text.PlainText(pd.array(values, dtype="str")).groups()
    labels = labels.to_pylist()
    assert len(set(labels)) == len(labels)  # each value once
    assert [None if c < 0 else labels[c] for c in codes] == values


@given(st.lists(st.one_of(st.none(), st.sampled_from(["a", "ab", "", "a\x00", "ß"]), st.text())))
def test_plain_groups_give_each_row_its_value(values):
    _check_groups([None if v is None else v.encode("utf-8", "replace").decode() for v in values])


def test_plain_groups_stay_exact_when_hashes_collide(monkeypatch):
    values = ["b", None, "a", "b", "", "a\x00", "a", "longer than eight bytes", "longer than eight"]
    _check_groups(values)
    monkeypatch.setattr(_text, "row_hashes", lambda s: np.zeros(len(s), dtype=np.uint64))
    _check_groups(values)  # every row collides: Arrow's encoder answers


def test_plain_groups_with_hashes_that_differ_only_in_low_bits(monkeypatch):
    """Hashes below the row ids' bits all tie in the packed sort; groups stay exact."""
    values = ["b", None, "a", "b", "", "a\x00", "a", "c", "b", None, "c"] * 7

    def small_hashes(strings):
        seen: dict = {}
        return np.array([seen.setdefault(v, len(seen)) for v in strings.to_pylist()], np.uint64)

    monkeypatch.setattr(_text, "row_hashes", small_hashes)
    _check_groups(values)


@given(
    st.lists(st.integers(0, 5), max_size=300),
    st.integers(0, 3),
    st.sampled_from([0, 1, 2**40, 2**63]),
)
def test_sorting_hashes_by_packed_values_is_a_stable_argsort(small, spread, base):
    """Keys that differ only in the low bits the row ids take over are ordered again."""
    keys = np.array(small, dtype=np.uint64) << np.uint64(spread * 3)
    keys |= np.uint64(base)
    rows, ordered = _text._sort_hashes(keys)
    expected = np.argsort(keys, kind="stable")
    assert rows.tolist() == expected.tolist()
    assert ordered.tolist() == keys[expected].tolist()


def test_plain_groups_number_values_as_arrows_encoder_does():
    values = pa.array(["b", None, "a", "b", "", "c", "a", None, "é"], type=pa.large_string())
    codes, labels = _text.PlainText(values).groups()
    encoded = pa.compute.dictionary_encode(values)
    assert codes.tolist() == encoded.indices.fill_null(-1).to_pylist()
    assert labels.to_pylist() == encoded.dictionary.to_pylist()


def test_a_column_of_many_chunks_answers_like_one_chunk():
    values = [f"v{i * 7 % 23}" if i % 9 else None for i in range(200)]
    whole = pa.array(values, type=pa.large_string())
    chunked = pa.chunked_array([whole[i : i + 37] for i in range(0, 200, 37)])
    one, many = _text.PlainText(pa.chunked_array([whole])), _text.PlainText(chunked)
    ids = np.array([199, 0, 36, 37, 38, 111, 5, 5])
    assert many.strings(ids) == one.strings(ids) == [values[i] for i in ids]
    assert many.take(ids).tolist() == one.take(ids).tolist()
    rows = np.arange(3, 190, 2)
    for asc in (True, False):
        assert (
            many.head(rows, ascending=asc, k=15).tolist()
            == one.head(rows, ascending=asc, k=15).tolist()
        )
        assert many.sort_order(ascending=asc).tolist() == one.sort_order(ascending=asc).tolist()
    codes_a, labels_a = many.groups()
    codes_b, labels_b = one.groups()
    assert codes_a.tolist() == codes_b.tolist()
    assert labels_a.to_pylist() == labels_b.to_pylist()
    assert many.contains(["V1"]).tolist() == one.contains(["v1"]).tolist()


@given(
    st.lists(
        st.one_of(
            st.none(),
            st.sampled_from(["", "a", "ab", "ab\x00", "ab\x00\x00\x00\x00\x00\x00\x00\x00x"]),
            st.text(alphabet="ab\x00é😀", max_size=20),
            st.text(max_size=30),
        ),
        max_size=80,
    ),
    st.booleans(),
)
def test_sort_strings_is_pythons_stable_code_point_order(values, ascending):
    values = [None if v is None else v.encode("utf-8", "replace").decode() for v in values]
    got = _text.sort_strings(pa.array(values, type=pa.large_string()), ascending=ascending)
    assert got.tolist() == _reference_order(values, ascending)
    if len(values) > 3:  # the same over several chunks
        arr = pa.array(values, type=pa.large_string())
        chunked = pa.chunked_array([arr[:3], arr[3:]])
        assert _text.sort_strings(chunked, ascending=ascending).tolist() == got.tolist()

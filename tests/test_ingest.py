"""Ingestion: user data -> typed columns -> base files -> reopened columns.

Text stays Arrow (no per-row Python strings), names never reach file names,
data the table cannot represent is refused naming the column, and stores
written by earlier versions still open and are reused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import weightwidget as ww
from weightwidget import _columns, _serialize, _text, query
from weightwidget.errors import StoreMismatchError

from .conftest import run_json
from .data.make_legacy_stores import legacy_arrays, legacy_frame

LEGACY = Path(__file__).resolve().parent / "data" / "legacy_stores"

TEXT_DTYPES = [
    pytest.param(None, id="object"),
    pytest.param("str", id="str-default"),
    pytest.param("string[pyarrow]", id="string-pyarrow"),
    pytest.param("string[python]", id="string-python"),
    pytest.param(pd.ArrowDtype(pa.string()), id="arrow-string"),
    pytest.param(pd.ArrowDtype(pa.large_string()), id="arrow-large-string"),
    pytest.param("category", id="category"),
]


def _arrow_backed(values: Any) -> bool:
    dtype = values.categories.dtype if isinstance(values, pd.Categorical) else values.dtype
    return isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"


@pytest.fixture(params=["dictionary", "plain"])
def text_form(request, monkeypatch):
    """Run a test with text columns held either way (the sample's rule, forced)."""
    monkeypatch.setattr(_text, "MAX_DISTINCT_SHARE", 1.0 if request.param == "dictionary" else 0.0)
    return request.param


# ---------------------------------------------------------------- text stays Arrow


@pytest.mark.parametrize("dtype", TEXT_DTYPES)
def test_text_columns_of_every_dtype_stay_arrow_backed(store_path, dtype, text_form):
    words = ["b cat", "a dog", None, "b cat", "c Cat", "a dog"]
    caption = pd.Series(np.array(words, dtype=object), dtype=object)
    if dtype is not None:
        caption = caption.astype(dtype)
    df = pd.DataFrame({"label": [0, 1, 0, 1, 0, 1], "caption": caption})
    t = ww.WeightTable.from_pandas(df, label="label", store=store_path)
    dictionary = text_form == "dictionary" or dtype == "category"  # a Categorical stays one
    for table in (t, ww.WeightTable.open(store_path)):
        cat = table.column("caption")
        assert isinstance(cat, pd.Categorical) == dictionary
        assert isinstance(cat, pd.Categorical) or isinstance(cat, pd.arrays.ArrowStringArray)
        assert _arrow_backed(cat)  # no Python str per row or per category
        assert np.asarray(cat.astype(object)).tolist()[:2] == ["b cat", "a dog"]
        assert pd.isna(cat[2])
        # filters compare categories and map codes
        assert table.select('caption == "b cat"').tolist() == [0, 3]
        assert table.select('caption != "b cat"').tolist() == [1, 2, 4, 5]
        assert table.select('caption in ["a dog", "c Cat"]').tolist() == [1, 4, 5]
        assert table.select('caption contains "CAT"').tolist() == [0, 3, 4]
        assert table.select('caption > "b"').tolist() == [0, 3, 4]
        # sorting: by text, missing last, ties by row id
        assert table.sort_order("caption").tolist() == [1, 5, 0, 3, 4, 2]
        assert table.sort_order("caption", ascending=False).tolist() == [4, 0, 3, 1, 5, 2]
        # pages show the text
        meta, _ = _serialize.encode_rows(
            table, np.array([2, 4]), [{"name": "caption", "kind": "string", "role": "data"}]
        )
        assert meta["columns"][0]["values"] == [None, "c Cat"]


def test_the_same_text_in_any_dtype_is_the_same_data(tmp_path):
    words = np.array([f"w{i % 7}" for i in range(50)], dtype=object)
    base = pd.DataFrame({"label": np.arange(50) % 3, "text": words})
    t = ww.WeightTable.from_pandas(base, label="label", store=tmp_path / "s")
    t.set_weights([0], 2.0)
    for dtype in ("str", "string[pyarrow]", pd.ArrowDtype(pa.string()), "category"):
        other = base.assign(text=base["text"].astype(dtype))
        again = ww.WeightTable.from_pandas(other, label="label", store=tmp_path / "s")
        assert again.revision == 1, dtype  # reused, not a mismatch


def test_text_labels_keep_their_public_form(store_path):
    labels = pd.Series(["dog", "cat", "dog", "bird"], dtype="str")
    t = ww.WeightTable.from_arrays(labels=labels, store=store_path)
    for table in (t, ww.WeightTable.open(store_path)):
        assert table.classes.tolist() == ["bird", "cat", "dog"]
        assert table.classes.dtype == object
        assert table.label_codes.tolist() == [2, 1, 2, 0]
        assert table.labels.tolist() == ["dog", "cat", "dog", "bird"]
        assert table.labels.dtype == object


def test_store_files_hold_codes_and_a_dictionary_or_the_plain_text(store_path):
    import pyarrow.parquet as pq

    n = 1000
    df = pd.DataFrame(
        {
            "label": np.arange(n) % 2,
            "text": [f"row {i}" for i in range(n)],  # all distinct: plain
            "word": [f"w{i % 5}" for i in range(n)],  # 5 values: a dictionary
        }
    )
    t = ww.WeightTable.from_pandas(df, label="label", store=store_path)
    assert isinstance(t.column("text"), pd.arrays.ArrowStringArray)
    assert isinstance(t.column("word"), pd.Categorical)
    (folder,) = (Path(store_path) / "base").iterdir()  # one folder per creation
    assert sorted(p.name for p in folder.iterdir()) == ["columns.parquet", "text-2.parquet"]
    columns = pq.read_table(folder / "columns.parquet")
    assert columns.schema.field("c1").type == pa.large_string()  # the text, written once
    assert columns.schema.field("c2").type == pa.int32()  # codes, not strings
    assert pq.read_table(folder / "text-2.parquet").num_rows == 5
    again = ww.WeightTable.open(store_path)
    assert isinstance(again.column("text"), pd.arrays.ArrowStringArray)
    assert isinstance(again.column("word"), pd.Categorical)
    assert again.column("text").tolist() == df["text"].tolist()


def test_text_column_encodes_in_one_arrow_pass():
    strings = pa.array(["x", None, "y", "x"])
    cat = _columns.text_column(strings, dictionary=True)
    assert cat.codes.tolist() == [0, -1, 1, 0]
    assert _arrow_backed(cat)
    chunked = pa.chunked_array([pa.array(["x", "y"]), pa.array(["y", "z"])])
    assert np.asarray(_columns.text_column(chunked, dictionary=True).astype(object)).tolist() == [
        "x",
        "y",
        "y",
        "z",
    ]


# ---------------------------------------------------------------- one way through


def test_column_kind_lives_beside_normalisation():
    assert query.column_kind is _columns.column_kind
    norm = _columns.normalise(
        {"label": [1, 2], "f": [0.5, 1.5], "b": [True, False], "s": ["a", "b"]}, label="label"
    )
    assert norm.kinds == {"label": "numeric", "f": "numeric", "b": "bool", "s": "string"}
    from weightwidget import store

    assert not hasattr(store, "npy_bytes")  # the store only receives encoded bytes
    blob = _columns.npy_bytes(np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(_columns.npy_load(blob), np.arange(6).reshape(2, 3))


def test_labels_are_normalised_once_into_classes_and_codes():
    norm = _columns.normalise({"label": ["b", "a", "b", "c"]}, label="label")
    assert norm.labels.classes.tolist() == ["a", "b", "c"]
    assert norm.labels.codes.tolist() == [1, 0, 1, 2]
    assert norm.labels.n_missing == 0
    # -1 marks a missing label (an unlabelled row)
    classes, codes = _columns.factorize(pd.Categorical(["b", None, "a"]))
    assert classes.tolist() == ["a", "b"] and codes.tolist() == [1, -1, 0]
    classes, codes = _columns.factorize(np.array([2.0, np.nan, 1.0]))
    assert classes.tolist() == [1.0, 2.0] and codes.tolist() == [1, -1, 0]
    norm = _columns.normalise({"label": ["b", None]}, label="label")
    assert norm.labels.codes.tolist() == [0, -1] and norm.labels.n_missing == 1


# ---------------------------------------------------------------- reserved names


@pytest.mark.parametrize("reserved", ["weight", "row"])
def test_no_column_can_shadow_the_tables_own_names(store_path, reserved):
    df = pd.DataFrame({reserved: [0, 1, 0], "x": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match=f"label column name '{reserved}' is reserved"):
        ww.WeightTable.from_pandas(df, label=reserved, store=store_path)
    df = pd.DataFrame({"label": [0, 1, 0], reserved: [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match=f"column name '{reserved}' is reserved"):
        ww.WeightTable.from_pandas(df, label="label", store=store_path)
    with pytest.raises(ValueError, match=f"column name '{reserved}' is reserved"):
        ww.WeightTable.from_arrays(labels=[0, 1, 0], store=store_path, **{reserved: [1, 2, 3]})
    with pytest.raises(ValueError, match=f"column name '{reserved}' is reserved"):
        ww.WeightTable.from_torch_dataset(
            _Pairs([0, 1, 0]), store=store_path, progress=False, **{reserved: [1, 2, 3]}
        )
    assert not Path(store_path).exists()  # refused before anything was written
    t = ww.WeightTable.from_arrays(labels=[0, 1, 0], store=store_path)
    with pytest.raises(ValueError, match=f"'{reserved}' is reserved"):
        t.set_columns({reserved: [1.0, 2.0, 3.0]})


def test_an_extra_column_cannot_replace_the_labels(store_path):
    with pytest.raises(ValueError, match="'label' is the name of the label column"):
        ww.WeightTable.from_arrays(labels=[0, 1], label=[5, 6], store=store_path)
    with pytest.raises(ValueError, match="'label' is the name of the label column"):
        ww.WeightTable.from_torch_dataset(_Pairs([0, 1]), store=store_path, label=[5, 6])


def test_a_label_column_named_weight_no_longer_edits_the_wrong_rows(store_path):
    # before: accepted, and `weight == 1` in the widget meant the labels, not the weights
    df = pd.DataFrame({"weight": [1, 0, 1]})
    with pytest.raises(ValueError, match="reserved"):
        ww.WeightTable.from_pandas(df, label="weight", store=store_path)


class _Pairs:
    def __init__(self, labels):
        self.labels = list(labels)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return 0.0, self.labels[i]


# ---------------------------------------------------------------- unrepresentable data


def test_duplicate_column_names_are_refused(store_path):
    df = pd.DataFrame({1: [1, 2], "1": [3, 4], "label": [0, 1]})
    with pytest.raises(ValueError, match="column '1' as 1 and '1'; column names must be unique"):
        ww.WeightTable.from_pandas(df, label="label", store=store_path)
    df = pd.DataFrame([[0, 1, 2]], columns=["label", "a", "a"])
    with pytest.raises(ValueError, match="the column 'a' twice"):
        ww.WeightTable.from_pandas(df, label="label", store=store_path)
    assert not Path(store_path).exists()


def test_vector_columns_are_refused_and_images_still_work(store_path):
    emb = np.random.default_rng(0).random((3, 16))
    msg = "column 'emb' has shape \\(3, 16\\): a vector of 16 values per sample"
    with pytest.raises(ValueError, match=msg):
        ww.WeightTable.from_arrays(labels=[0, 1, 0], emb=emb, store=store_path)
    df = pd.DataFrame({"label": [0, 1, 0], "emb": list(emb)})
    with pytest.raises(ValueError, match=msg):
        ww.WeightTable.from_pandas(df, label="label", store=store_path)
    df = pd.DataFrame({"label": [0, 1, 0], "emb": [[1, 2], [3, 4], [5, 6]]})
    with pytest.raises(ValueError, match="column 'emb' has shape \\(3, 2\\)"):
        ww.WeightTable.from_pandas(df, label="label", store=store_path)
    with pytest.raises(ValueError, match="at most 4 channels"):
        ww.WeightTable.from_arrays(labels=[0, 1, 0], x=np.zeros((3, 4, 4, 16)), store=store_path)
    assert not Path(store_path).exists()
    gray = np.arange(3 * 5 * 5, dtype=np.uint8).reshape(3, 5, 5)
    rgb = np.zeros((3, 4, 4, 3), dtype=np.float32)
    t = ww.WeightTable.from_arrays(labels=[0, 1, 0], gray=gray, rgb=rgb, store=store_path)
    cols = [{"name": c, "kind": "image", "role": "data"} for c in ("gray", "rgb")]
    for table in (t, ww.WeightTable.open(store_path)):
        np.testing.assert_array_equal(table.column("gray"), gray)
        meta, _ = _serialize.encode_rows(table, np.array([0, 2]), cols)
        assert [c["kind"] for c in meta["columns"]] == ["image", "image"]


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(pd.array([True, None, False], dtype="boolean"), id="boolean"),
        pytest.param(pd.array([True, None, False], dtype="bool[pyarrow]"), id="bool-pyarrow"),
        pytest.param(np.array([True, None, False], dtype=object), id="object"),
    ],
)
def test_nullable_booleans_with_missing_values_are_refused(store_path, values):
    df = pd.DataFrame({"label": [0, 1, 0], "ok": values})
    msg = "column 'ok' is boolean with 1 missing value\\(s\\) \\(first at row 1\\)"
    with pytest.raises(ValueError, match=msg):
        ww.WeightTable.from_pandas(df, label="label", store=store_path)
    full = pd.DataFrame({"label": [0, 1, 0], "ok": pd.Series(values).fillna(False)})
    t = ww.WeightTable.from_pandas(full, label="label", store=store_path)
    assert t.column_kind("ok") == "bool"
    assert t.select("ok").tolist() == [0]


@pytest.mark.parametrize("name", ["a,b", "a/b", "../x", "a=1,b=2", "x" * 5000, "é ²"])
def test_any_printable_name_round_trips_through_the_store(tmp_path, name):
    store = tmp_path / "s"
    images = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    t = ww.WeightTable.from_arrays(
        labels=[0, 1], store=store, **{name: images, name + "!": [0.5, 1.5]}
    )
    assert t.columns == ["label", name, name + "!"]
    assert sorted(p.name for p in next((store / "base").iterdir()).iterdir()) == [
        "columns.parquet",
        "tensor-1.npy",
    ]
    got = run_json(
        f"""
        import json, weightwidget as ww
        t = ww.WeightTable.open({str(store)!r})
        a, b = t.column({name!r}), t.column({name + "!"!r})
        print(json.dumps([t.columns, a.tolist(), b.tolist()]))
        """
    )
    assert got == [["label", name, name + "!"], images.tolist(), [0.5, 1.5]]


@pytest.mark.parametrize(
    ("name", "match"),
    [("a`b", "contains a backtick"), ("a\x00b", "control character"), ("a\nb", "control")],
)
def test_names_the_filter_language_cannot_spell_are_refused(store_path, name, match):
    with pytest.raises(ValueError, match=match):
        ww.WeightTable.from_arrays(labels=[0, 1], store=store_path, **{name: [1, 2]})
    with pytest.raises(ValueError, match=match):
        ww.WeightTable.from_pandas(pd.DataFrame({name: [0, 1]}), label=name, store=store_path)


def test_infinite_labels_are_refused(store_path):
    msg = "label column 'label' has infinite values \\(inf at row 1, and 1 more\\)"
    with pytest.raises(ValueError, match=msg):
        ww.WeightTable.from_arrays(labels=[0.5, np.inf, -np.inf], store=store_path)


def test_integers_beyond_64_bits_are_refused(store_path):
    big = np.array([2**70, 1, 2], dtype=object)
    with pytest.raises(ValueError, match="column 'label' holds integers beyond 64 bits"):
        ww.WeightTable.from_arrays(labels=big, store=store_path)
    with pytest.raises(ValueError, match="column 'id' holds integers beyond 64 bits"):
        ww.WeightTable.from_arrays(labels=[0, 1, 2], id=big, store=store_path)
    # 64-bit values themselves are kept exactly
    top = np.array([2**63 - 1, 0], dtype=np.int64)
    t = ww.WeightTable.from_arrays(labels=top, store=store_path)
    assert t.classes.tolist() == [0, 2**63 - 1]
    assert t.select(f"label == {2**63 - 1}").tolist() == [0]


def test_class_names_with_a_backtick_work_in_class_filters_and_histograms(store_path):
    labels = ["a`b", 'q"uote', "a`b", "plain", "back\\slash"]
    t = ww.WeightTable.from_arrays(labels=labels, store=store_path)
    counts = _serialize.class_counts(t)
    for i, cls in enumerate(t.classes):
        text = _serialize.class_filter(t.label, cls)
        rows = t.select(text)
        assert [labels[r] for r in rows] == [cls] * int(counts[i]), text
    assert dict(zip(t.classes.tolist(), counts.tolist(), strict=True))["a`b"] == 2


def test_float_labels_out_of_int64_range_stay_floats(store_path):
    t = ww.WeightTable.from_arrays(labels=[1e19, 2.0, 1e19], store=store_path)
    assert t.classes.tolist() == [2.0, 1e19]
    assert t.label_codes.tolist() == [1, 0, 1]


# ---------------------------------------------------------------- stores written before


def _copy(name: str, tmp_path: Path) -> Path:
    dst = tmp_path / name
    shutil.copytree(LEGACY / name, dst)
    return dst


def test_a_store_written_before_opens_with_its_columns_and_revisions(tmp_path):
    store = _copy("frame", tmp_path)
    t = ww.WeightTable.open(store)
    df = legacy_frame()
    assert t.revision == 2
    assert t.columns == [*df.columns, "metric", "verdict"]
    np.testing.assert_array_equal(t.column("score"), df["score"].to_numpy())
    np.testing.assert_array_equal(t.column("flagged"), df["flagged"].to_numpy())
    caption = np.asarray(t.column("caption").astype(object))
    assert caption[5] is np.nan or pd.isna(caption[5])
    assert caption[:5].tolist() == df["caption"][:5].tolist()
    assert t.labels.tolist() == df["label"].tolist()
    assert t.weights[:4].tolist()[1:] == [0.0, 0.0, 0.0]
    assert t.select("verdict == 'ok'").size == len(df)
    assert t.select("caption contains 'dog'").size > 0


def test_rebuilding_the_same_frame_on_a_store_written_before_reuses_it(tmp_path):
    store = _copy("frame", tmp_path)
    t = ww.WeightTable.from_pandas(legacy_frame(), label="label", store=store, name="f")
    assert t.revision == 2  # reused with its curated weights, not a mismatch
    changed = legacy_frame()
    changed.loc[0, "loss"] += 1
    with pytest.raises(StoreMismatchError, match="the values of column\\(s\\) 'loss' differ"):
        ww.WeightTable.from_pandas(changed, label="label", store=store)


def test_a_store_written_before_with_a_comma_in_an_image_name_opens_in_a_new_process(tmp_path):
    store = _copy("arrays", tmp_path)
    got = run_json(
        f"""
        import json, weightwidget as ww
        t = ww.WeightTable.open({str(store)!r})
        print(json.dumps([t.columns, t.revision, t.column("a,b").shape]))
        """
    )
    assert got == [["label", "a,b", "tag"], 1, [12, 4, 4]]
    cols = legacy_arrays()
    labels = cols.pop("labels")
    t = ww.WeightTable.from_arrays(labels=labels, store=store, **cols)
    assert t.revision == 1  # reused


def test_an_unnamed_table_finds_its_default_store_written_before(tmp_path, monkeypatch):
    meta = json.loads((LEGACY / "frame" / "meta.json").read_text())
    default = tmp_path / ".weightwidget" / f"table-{meta['fingerprint'][:12]}"
    shutil.copytree(LEGACY / "frame", default)
    monkeypatch.chdir(tmp_path)
    t = ww.WeightTable.from_pandas(legacy_frame(), label="label")
    assert t.revision == 2
    assert Path(t.store_url).resolve() == default.resolve()


def test_new_stores_record_their_fingerprint_method(store_path, frame):
    t = ww.WeightTable.from_pandas(frame, label="label", store=store_path)
    meta = json.loads((Path(store_path) / "meta.json").read_text())
    assert meta["fingerprint_method"] == _columns.FINGERPRINT_METHOD
    assert [c["kind"] for c in meta["columns"]] == ["numeric", "numeric", "string", "bool"]
    t.set_weights([0], 3.0)
    again = ww.WeightTable.from_pandas(frame, label="label", store=store_path)
    assert again.revision == 1


def test_a_column_named_like_the_starting_weights_key_does_not_collide(tmp_path):
    # the old recipe keyed the starting weights "(starting weights)" beside the columns,
    # so this column was overwritten in the fingerprint and the data below looked the same
    ww.WeightTable.from_arrays(
        labels=[0, 1], store=tmp_path / "a", **{"(starting weights)": [5.0, 6.0]}
    )
    with pytest.raises(StoreMismatchError, match="columns missing from the data"):
        ww.WeightTable.from_arrays(labels=[0, 1], store=tmp_path / "a")

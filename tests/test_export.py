"""Curated export (issue 13 point 5): the rows that train, with their provenance."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import weightwidget as ww
from weightwidget.cli import main


@pytest.fixture
def curated(store_path):
    rng = np.random.default_rng(0)
    n = 200
    labels = rng.choice(["cat", "dog", "fox"], size=n).astype(object)
    labels[::10] = None  # 20 unlabelled rows
    t = ww.WeightTable.from_arrays(
        labels=labels,
        name="pets",
        store=store_path,
        loss=rng.gamma(2.0, 1.0, n),
        caption=[f"pet {i}" for i in range(n)],
        image=np.zeros((n, 4, 4), dtype=np.uint8),
    )
    t.set_weights("loss > 3", 0, message="exclude hard ones")
    t.scale_weights("label == 'fox'", 2.0)
    return t


def _trained(t):
    return (t.weights > 0) & (t.label_codes >= 0)


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_export_round_trips_rows_and_provenance(curated, tmp_path, suffix):
    path = tmp_path / f"pets.{suffix}"
    record = curated.export(path)
    df, meta = ww.read_export(path)
    keep = np.flatnonzero(_trained(curated))
    assert df["row"].tolist() == keep.tolist()
    assert list(df.columns) == ["row", "label", "weight", "loss", "caption"]  # no images
    np.testing.assert_allclose(df["weight"], curated.weights[keep])
    assert df["label"].astype(str).tolist() == curated.labels[keep].astype(str).tolist()
    np.testing.assert_allclose(df["loss"], curated.column("loss")[keep])
    assert meta == record
    assert meta["table"] == "pets" and meta["revision"] == curated.revision == 2
    assert meta["store"] == curated.store_url
    assert meta["classes"] == ["cat", "dog", "fox"]
    assert meta["rows"] == len(keep) and meta["n_rows"] == 200
    assert meta["include_excluded"] is False


def test_parquet_provenance_is_schema_metadata(curated, tmp_path):
    curated.export(tmp_path / "x.parquet")
    schema = pq.read_schema(tmp_path / "x.parquet")
    meta = json.loads(schema.metadata[b"weightwidget"])
    assert meta["revision"] == 2 and meta["table"] == "pets"


def test_csv_provenance_is_a_json_file_beside_it(curated, tmp_path):
    curated.export(tmp_path / "x.csv", columns=[])
    assert json.loads((tmp_path / "x.csv.json").read_text())["revision"] == 2
    plain = pd.read_csv(tmp_path / "x.csv")  # the CSV itself stays plain
    assert list(plain.columns) == ["row", "label", "weight"]
    (tmp_path / "x.csv.json").unlink()
    with pytest.raises(ValueError, match="no provenance record: x.csv.json"):
        ww.read_export(tmp_path / "x.csv")


def test_where_columns_and_excluded_rows(curated, tmp_path):
    rec = curated.export(tmp_path / "a.parquet", where="label == 'fox'", columns=["loss"])
    df, _ = ww.read_export(tmp_path / "a.parquet")
    fox = (curated.label_codes == 2) & _trained(curated)
    assert df["row"].tolist() == np.flatnonzero(fox).tolist()
    assert list(df.columns) == ["row", "label", "weight", "loss"]
    assert rec["where"] == "label == 'fox'"
    curated.export(tmp_path / "all.parquet", include_excluded=True)
    everything, meta = ww.read_export(tmp_path / "all.parquet")
    assert len(everything) == 200 and meta["include_excluded"] is True
    assert everything["label"].isna().sum() == 20
    assert (everything["weight"] == 0).sum() == int((curated.weights == 0).sum())


def test_export_of_a_past_revision(curated, tmp_path, store_path):
    past = ww.WeightTable.open(store_path, revision=1)
    rec = past.export(tmp_path / "r1.parquet")
    df, meta = ww.read_export(tmp_path / "r1.parquet")
    assert meta["revision"] == rec["revision"] == 1
    assert not (df["label"] == "fox").any() or (df["weight"][df["label"] == "fox"] == 1).all()


def test_export_refuses_what_it_cannot_write(curated, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="format must be one of"):
        curated.export(out / "x.xlsx", format="xlsx")
    with pytest.raises(ValueError, match="unknown column 'los'.*did you mean 'loss'"):
        curated.export(out / "x.parquet", columns=["los"])
    with pytest.raises(ValueError, match="holds images"):
        curated.export(out / "x.parquet", columns=["image"])
    with pytest.raises(TypeError, match="list of column names"):
        curated.export(out / "x.parquet", columns="loss")
    assert not out.exists()  # refused before anything was written


def test_cli_export_takes_the_same_options(curated, store_path, tmp_path, capsys):
    out = tmp_path / "c.csv"
    argv = ["export", store_path, "-o", str(out), "--where", "loss < 2", "--columns", "loss"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    df, meta = ww.read_export(out)
    keep = np.flatnonzero(_trained(curated) & (curated.column("loss") < 2))
    assert df["row"].tolist() == keep.tolist() and list(df.columns)[-1] == "loss"
    assert meta["revision"] == 2 and f"wrote {len(keep)} rows of revision 2" in printed
    assert main(["export", store_path, "-o", str(tmp_path / "p.parquet"), "-r", "0"]) == 0
    assert ww.read_export(tmp_path / "p.parquet")[1]["revision"] == 0
    both = ["export", store_path, "-f", "npy", "-o", str(tmp_path / "w.npy"), "--where", "x"]
    assert main(both) == 1
    assert "--where, --columns and --include-excluded apply to csv" in capsys.readouterr().err

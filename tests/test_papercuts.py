"""First-hour papercuts (issue 13 point 7) that have no module of their own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import weightwidget as ww


def test_table_name_is_refused_with_the_option_meant(store_path):
    df = pd.DataFrame({"label": [0, 1, 1]})
    with pytest.raises(TypeError, match=r"takes name=, not table_name=.*did you mean name='x'"):
        ww.WeightTable.from_pandas(df, label="label", table_name="x", store=store_path)
    with pytest.raises(TypeError, match=r"table_name='x' would become a column.*name='x'"):
        ww.WeightTable.from_arrays(labels=[0, 1], table_name="x", store=store_path)
    torch = pytest.importorskip("torch")
    ds = torch.utils.data.TensorDataset(torch.zeros(2, 1), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="did you mean name='x'"):
        ww.WeightTable.from_torch_dataset(ds, table_name="x", store=store_path, progress=False)
    # other unknown keywords get Python's wording plus a did-you-mean
    with pytest.raises(TypeError, match="unexpected keyword argument 'nmae'.*did you mean 'name'"):
        ww.WeightTable.from_pandas(df, label="label", nmae="x", store=store_path)
    # a real column called table_name still works (from_pandas; from_arrays with an array)
    t = ww.WeightTable.from_arrays(labels=[0, 1], table_name=np.array(["a", "b"]), store=store_path)
    assert "table_name" in t.columns

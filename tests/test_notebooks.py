"""Every notebook in notebooks/ runs headless from top to bottom (nbclient), offline,
and says what it claims: the quickstart's text is checked against the table it prints."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _run(name: str, tmp_path: Path) -> str:
    src = ROOT / "notebooks" / name
    shutil.copy(src, tmp_path / name)
    nb = nbformat.read(tmp_path / name, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text.append(out["text"])
            elif "data" in out and "text/plain" in out["data"]:
                text.append(out["data"]["text/plain"])
    return "\n".join(text)


def test_every_notebook_is_covered():
    assert {p.name for p in NOTEBOOKS} == {
        "gradual_labelling.ipynb",
        "quickstart.ipynb",
        "tensorflow.ipynb",
    }


RECIPES = (
    "baseline",
    "balanced",
    "balanced + label issues excluded",
    "balanced + top-loss excluded",
)
COLUMNS = ("accuracy", "minority", "precision", "recall", "real_excluded")


def _summary_table(out: str) -> dict[str, dict[str, tuple[float, float]]]:
    """The quickstart's printed table: recipe -> column -> (mean, std); '-' is absent."""
    table = {}
    for recipe in RECIPES:
        line = re.search(rf"^\| {re.escape(recipe)} +\|(.*)\|$", out, flags=re.M)
        assert line, f"row {recipe!r} missing from the printed table:\n{out}"
        cells = [c.strip() for c in line.group(1).split("|")]
        assert len(cells) == len(COLUMNS), cells
        table[recipe] = {
            col: tuple(float(x) for x in cell.split(" ± "))
            for col, cell in zip(COLUMNS, cells, strict=True)
            if cell != "-"
        }
    return table


def test_quickstart(tmp_path):
    out = _run("quickstart.ipynb", tmp_path)
    assert "WeightWidget" in out  # the widget was displayed
    assert (tmp_path / ".weightwidget" / "digits" / "meta.json").exists()
    assert re.search(r"the widget shows \d+ rows", out)
    assert "mean ± std over 5 seeds" in out
    t = _summary_table(out)
    base, bal = t["baseline"], t["balanced"]
    issues, loss = t["balanced + label issues excluded"], t["balanced + top-loss excluded"]

    def m(row, col):
        return row[col][0]

    # The claims of the notebook's "What the numbers show", one by one.
    # Balancing lifts the rare digits; test accuracy stays where it was.
    assert m(bal, "minority") > m(base, "minority") + 0.05
    assert abs(m(bal, "accuracy") - m(base, "accuracy")) < 0.01
    # Excluding label issues: the best test accuracy of the four; ~9 in 10 flips caught,
    # ~7 in 10 flagged rows really flipped.
    assert m(issues, "accuracy") == max(m(r, "accuracy") for r in t.values())
    assert m(issues, "accuracy") > m(bal, "accuracy") + 0.01
    assert 0.85 <= m(issues, "recall") < 0.95 and 0.65 <= m(issues, "precision") < 0.75
    # ... does not raise minority recall; it excludes more genuine 7-9s than the loss ranking
    assert m(issues, "minority") <= m(bal, "minority") + 0.005
    assert m(issues, "real_excluded") > 2 * m(loss, "real_excluded")
    # Top-loss with the same count: nearly as precise, minority recall kept, test accuracy
    # at the balanced level.
    assert m(issues, "precision") - 0.05 < m(loss, "precision") <= m(issues, "precision")
    assert m(loss, "minority") >= m(bal, "minority") - 0.005
    assert abs(m(loss, "accuracy") - m(bal, "accuracy")) < 0.01
    # The last three minority recalls differ by less than their spread across seeds.
    last = [bal, issues, loss]
    spread = max(m(r, "minority") for r in last) - min(m(r, "minority") for r in last)
    assert spread < min(r["minority"][1] for r in last)
    # Every figure the text quotes is one the table printed (the text cannot drift).
    nb = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
    text = next(c.source for c in nb.cells if c.source.startswith("## What the numbers show"))
    quoted = re.findall(r"(?<![\d.])\d+\.\d+(?![\d.])", text)
    assert len(quoted) >= 10, quoted
    printed = set(re.findall(r"(?<![\d.])\d+\.\d+(?![\d.])", out.split("mean ± std")[1]))
    assert set(quoted) <= printed, set(quoted) - printed


STRATEGIES = ("random", "least_confident", "margin", "entropy")
DECIMAL = r"(?<![\d.])\d+\.\d+(?!\.?\d)"  # 0.969 in "0.969." too


def _curves(out: str) -> dict[int, dict[str, tuple[float, float]]]:
    """The gradual-labelling notebook's table: labelled -> strategy -> (mean, std)."""
    head = re.search(
        r"^\| labelled \(test accuracy, mean ± std over 10 seeds\) +\|(.*)\|$", out, re.M
    )
    assert head, f"the accuracy table is missing:\n{out}"
    assert [c.strip() for c in head.group(1).split("|")] == list(STRATEGIES)
    table = {}
    for line in re.finditer(r"^\| (\d+) +\|(.*)\|$", out, flags=re.M):
        cells = [c.strip().split(" ± ") for c in line.group(2).split("|")]
        table[int(line.group(1))] = {
            s: (float(m), float(sd)) for s, (m, sd) in zip(STRATEGIES, cells, strict=True)
        }
    assert sorted(table) == list(range(60, 261, 20)), sorted(table)
    return table


def test_gradual_labelling(tmp_path):
    import weightwidget as ww

    out = _run("gradual_labelling.ipynb", tmp_path)
    assert "WeightWidget" in out and "the widget shows the 20 rows to label next" in out
    assert (tmp_path / "gradual-labelling.png").stat().st_size > 10_000  # the README's plot

    # The demo loop: round r is revision r, one set_labels of 20 rows each, in the store.
    t = ww.WeightTable.open(tmp_path / ".weightwidget" / "digits-gradual")
    assert (t.revision, t.n_labelled, len(t)) == (10, 260, 1257)
    hist = t.history().set_index("revision")
    for r in range(1, 11):
        assert hist.loc[r, "message"].startswith(f"round {r}: the 20 least confident rows")
        assert hist.loc[r, "rows_changed"] == 20
        assert (ww.WeightTable.open(t.store_url, revision=r).n_labelled) == 60 + 20 * r
    assert (t.sample_weight() > 0).sum() == 260  # labelled rows train at weight 1, no others
    assert set(t.sample_weight()) == {0.0, 1.0}

    # The claims of "What the numbers show", one by one.
    first = float(re.search(r"^60 labels: test accuracy (\d\.\d+)$", out, re.M).group(1))
    last = float(re.search(r"^10 +10 +260 +(\d\.\d+) ", out, re.M).group(1))
    assert last > first + 0.1
    asked, unlabelled = map(
        int, re.search(r"right on (\d+)% of the rows it asked about, against (\d+)%", out).groups()
    )
    assert asked < unlabelled - 30
    c = _curves(out)
    assert len({c[60][s] for s in STRATEGIES}) == 1  # one start for all four

    def m(n, s):
        return c[n][s][0]

    def sd(n, s):
        return c[n][s][1]

    # Asking beats random at 260 labels; by more than both spreads for two of the three.
    for s in STRATEGIES[1:]:
        assert m(260, s) > m(260, "random")
    for s in ("least_confident", "margin"):
        assert m(260, s) - m(260, "random") > sd(260, s) + sd(260, "random")
    assert m(260, "entropy") - m(260, "random") <= sd(260, "entropy") + sd(260, "random")
    # Margin is the best at every count after the start ...
    for n in range(80, 261, 20):
        assert m(n, "margin") == max(m(n, s) for s in STRATEGIES), n
    # ... reaches random's final accuracy first, and matches the model with every label.
    needed = dict(re.findall(r"^  ([a-z_]+): (\d+)$", out, re.M))
    assert needed == {"random": "260", "least_confident": "180", "margin": "140", "entropy": "200"}
    ceiling, ceiling_sd = map(
        float, re.search(r"all 1,257 labels of the pool: (\S+) ± (\S+)", out).groups()
    )
    assert abs(m(260, "margin") - ceiling) < ceiling_sd

    def numbers(name):  # a row of the printed wins table
        return [int(x) for x in re.search(rf"^{name}((?: +\d+)+)$", out, re.M).group(1).split()]

    head = numbers("labelled")
    assert head == list(range(80, 261, 20)), head
    # strategy -> labelled -> seeds (of 10) in which it beats random
    wins = {s: dict(zip(head, numbers(s), strict=True)) for s in STRATEGIES[1:]}
    assert all(wins["margin"][n] == 10 for n in range(100, 261, 20)) and wins["margin"][80] == 7
    assert all(wins["least_confident"][n] >= 9 for n in range(160, 261, 20))
    assert all(wins["entropy"][n] in (8, 9) for n in range(200, 261, 20))
    # Not from the first round: two of three below random after it, coin flips seed by seed.
    assert m(80, "least_confident") < m(80, "random") and m(80, "entropy") < m(80, "random")
    assert (wins["least_confident"][80], wins["entropy"][80]) == (5, 3)
    assert all(m(n, "entropy") <= m(n, "random") for n in (80, 100, 120))
    assert m(140, "entropy") > m(140, "random")
    # Every figure the text quotes is one the notebook printed.
    nb = nbformat.read(ROOT / "notebooks" / "gradual_labelling.ipynb", as_version=4)
    text = next(c.source for c in nb.cells if c.source.startswith("## What the numbers show"))
    figures = [first, last, ceiling, ceiling_sd, *c[260]["random"], *c[260]["least_confident"]]
    figures += [*c[260]["margin"], *c[260]["entropy"], m(80, "least_confident")]
    figures += [m(80, s) for s in ("entropy", "random", "margin")]
    figures += [m(120, "random"), m(120, "entropy")]
    assert set(re.findall(DECIMAL, text)) == {f"{x:.3f}" for x in figures}
    assert set(re.findall(r"\d+%", text)) == {f"{asked}%", f"{unlabelled}%"}
    # The README's section shows this table and plot, and quotes only printed figures.
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Gradual labelling")[1].split("\n## ")[0]
    table = re.search(r"^```\n(\| labelled .*?)^```", section, re.M | re.S).group(1)
    assert table.strip() in out
    assert "](docs/gradual-labelling.png)" in section
    assert (ROOT / "docs" / "gradual-labelling.png").stat().st_size > 10_000
    prose = section.split(table)[1]  # the paragraph on the figures
    assert set(re.findall(DECIMAL, prose)) == {f"{ceiling:.3f}", f"{ceiling_sd:.3f}"}


@pytest.mark.tf
def test_tensorflow(tmp_path):
    out = _run("tensorflow.ipynb", tmp_path)
    before = float(re.search(r"minority recall before \(7, 8, 9\): ([0-9.]+)", out).group(1))
    after = [
        float(x) for x in re.findall(r"minority recall with [a-z._ ]+ \(7, 8, 9\): ([0-9.]+)", out)
    ]
    assert len(after) == 3, out
    assert all(a > before for a in after), (before, after)
    assert "(TensorSpec(shape=(None, 64)" in out  # (x, y, w) batches

"""scripts/paper_tables.py fills the paper's tables from evaluate-now reports."""

import json

import pytest

from tests.script_loader import load_script


def _script():
    return load_script("paper_tables")


def test_tables_put_our_numbers_next_to_the_papers(tmp_path, rng):
    tables = _script()
    reports = {}
    for name in ("metrical", "non", "a", "h"):
        stats = rng.uniform(0.5, 3.0, 3)
        reports[name] = stats
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps(
            {"median_mm": stats[0], "mean_mm": stats[1], "std_mm": stats[2], "images": 5,
             "missing": 1}))
    text = tables.main([f"--metrical={tmp_path / 'metrical'}",
                        f"--non-metrical={tmp_path / 'non'}", "--ablation",
                        f"a={tmp_path / 'a'}", f"h={tmp_path / 'h'}"])
    lines = text.splitlines()
    ours = [line for line in lines if line.startswith("| **jaxface**")]
    assert len(ours) == 2
    assert ours[0].endswith(" | ".join(f"{x:.2f}" for x in reports["metrical"]) + " |")
    assert "| DECA (Feng et al. 2021) | 1.35 | 1.80 | 1.64 |" in lines
    row_h = next(line for line in lines if line.startswith("| h |"))
    assert "1.12 | 1.39 | 1.18" in row_h and f"{reports['h'][0]:.2f}" in row_h
    assert next(line for line in lines if line.startswith("| c |")).endswith("— | — | — |")
    with pytest.raises(SystemExit):
        tables.main(["--ablation", "z=somewhere"])
    with pytest.raises(FileNotFoundError, match="evaluate-now"):
        tables.main([f"--metrical={tmp_path / 'none'}"])

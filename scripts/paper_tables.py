"""Our NoW numbers next to the paper's Tables 1-3, as Markdown.

    jaxface evaluate-now --now NoW --predictions runs/now_pred --out runs/now_metrical --metrical
    jaxface evaluate-now --now NoW --predictions runs/now_pred --out runs/now_nonmetrical
    python scripts/paper_tables.py --metrical runs/now_metrical \
        --non-metrical runs/now_nonmetrical --ablation a=runs/abl_a/now ... h=runs/abl_h/now

Each folder is an ``evaluate-now`` report (its ``summary.json``). The model should be trained
as the paper's (VGGFace2 + BUPT-Balancedface, ``configs/coarse.py`` then ``configs/
detail.py``; the ablations ``configs/ablation/{a..h}.py``) and evaluated on the same split as
the numbers it is compared with: the paper reports the NoW test split, whose scans are held
by the benchmark's authors (submit ``now-predict``'s folder to them); the validation split
can be evaluated here. Rows we have no report for print as "—".
"""

from __future__ import annotations

import argparse
import json
import pathlib

# (method, median, mean, std) in mm, as printed in the paper.
TABLE_1_METRICAL = [
    ("3DMM-CNN (Tran et al. 2017)", 3.91, 4.84, 4.02),
    ("SynergyNet (Wu et al. 2021)", 2.28, 2.86, 2.39),
    ("Dib et al. (2021)", 1.59, 2.12, 1.93),
    ("3DDFA-V2 (Guo et al. 2020)", 1.53, 2.06, 1.95),
    ("RingNet (Sanyal et al. 2019)", 1.50, 1.98, 1.77),
    ("FOCUS (Li et al. 2022)", 1.41, 1.85, 1.70),
    ("DECA (Feng et al. 2021)", 1.35, 1.80, 1.64),
    ("Wood et al. (2022)", 1.36, 1.73, 1.47),
    ("the paper", 1.24, 1.59, 1.39),
]
TABLE_2_NON_METRICAL = [
    ("3DMM-CNN (Tran et al. 2017)", 1.84, 2.33, 2.05),
    ("PRNet (Feng et al. 2018)", 1.50, 1.98, 1.88),
    ("3DDFA-V2 (Guo et al. 2020)", 1.23, 1.57, 1.39),
    ("RingNet (Sanyal et al. 2019)", 1.21, 1.53, 1.31),
    ("Deep3D (Deng et al. 2019)", 1.23, 1.54, 1.29),
    ("SynergyNet (Wu et al. 2021)", 1.27, 1.59, 1.31),
    ("Dib et al. (2021)", 1.26, 1.57, 1.31),
    ("Shen et al. (2023)", 1.19, 1.46, 1.22),
    ("the paper", 1.12, 1.39, 1.18),
]
# Table 3 (non-metrical): experiment -> (PIM, GRPAM, LOSS, median, mean, std).
TABLE_3_ABLATION = {
    "a": (False, False, False, 1.28, 1.64, 1.25),
    "b": (False, True, False, 1.18, 1.46, 1.25),
    "c": (True, False, False, 1.25, 1.60, 1.40),
    "d": (False, False, True, 1.16, 1.46, 1.24),
    "e": (True, True, False, 1.17, 1.45, 1.24),
    "f": (True, False, True, 1.15, 1.42, 1.20),
    "g": (False, True, True, 1.14, 1.44, 1.23),
    "h": (True, True, True, 1.12, 1.39, 1.18),
}


def read_summary(folder: str | None) -> dict | None:
    if folder is None:
        return None
    path = pathlib.Path(folder) / "summary.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (write it with `jaxface evaluate-now`)")
    return json.loads(path.read_text())


def _ours(summary: dict | None) -> str:
    if summary is None:
        return "— | — | —"
    return f"{summary['median_mm']:.2f} | {summary['mean_mm']:.2f} | {summary['std_mm']:.2f}"


def _note(summary: dict | None) -> str:
    if summary is None:
        return ""
    return f" ({summary['images']} images, {summary.get('missing', 0)} missing)"


def comparison_table(title: str, rows, ours: dict | None) -> str:
    lines = [f"### {title}", "", "| method | median | mean | std |", "|---|---|---|---|"]
    lines += [f"| {m} | {a:.2f} | {b:.2f} | {c:.2f} |" for m, a, b, c in rows]
    lines.append(f"| **jaxface**{_note(ours)} | {_ours(ours)} |")
    return "\n".join(lines)


def ablation_table(ours: dict[str, dict]) -> str:
    def mark(flag):
        return "✓" if flag else "—"

    lines = ["### Table 3: ablations (non-metrical, mm)", "",
             "| exp | PIM | GRPAM | LOSS | paper median | mean | std | jaxface median | mean "
             "| std |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, (pim, grpam, loss, med, mean, std) in TABLE_3_ABLATION.items():
        lines.append(f"| {name} | {mark(pim)} | {mark(grpam)} | {mark(loss)} | {med:.2f} | "
                     f"{mean:.2f} | {std:.2f} | {_ours(ours.get(name))} |")
    return "\n".join(lines)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metrical", help="evaluate-now report folder (metrical track)")
    parser.add_argument("--non-metrical", help="evaluate-now report folder (non-metrical)")
    parser.add_argument("--ablation", nargs="*", default=[], metavar="EXP=FOLDER",
                        help="non-metrical reports of the ablation runs, e.g. a=runs/a/now")
    args = parser.parse_args(argv)
    ablations = {}
    for item in args.ablation:
        name, _, folder = item.partition("=")
        if name not in TABLE_3_ABLATION or not folder:
            parser.error(f"--ablation takes EXP=FOLDER with EXP in a..h, got {item!r}")
        ablations[name] = read_summary(folder)
    text = "\n\n".join([
        comparison_table("Table 1: metrical error on NoW (mm)", TABLE_1_METRICAL,
                         read_summary(args.metrical)),
        comparison_table("Table 2: non-metrical error on NoW (mm)", TABLE_2_NON_METRICAL,
                         read_summary(args.non_metrical)),
        ablation_table(ablations)])
    print(text)
    return text


if __name__ == "__main__":
    main()

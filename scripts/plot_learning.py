"""Learning curves of training runs from their ``metrics.jsonl``: landmark px, mesh and shape
mm (similarity-aligned solid, rigid dashed) of each eval against the step, one colour per run,
the mean face as a dotted black line (``--mean-face``: scripts/mean_face_errors.py's JSON on
the same eval images; else each run's step-0 eval, the mean face only for an untrained
network).

    python scripts/plot_learning.py --out docs/img/learning.png \\
        --mean-face runs/mean_face_learning.json \\
        runs/learn_full:"GRPAM + PIM" runs/learn_base:"base (ablation a)"

Also prints a Markdown table of each run's first and last evals.
"""

import argparse
import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PANELS = (("landmark_px", None, "landmark error (px)"),
          ("mesh_sim_mm", "mesh_mm", "posed mesh error (mm)"),
          ("shape_sim_mm", "shape_mm", "neutral shape error (mm)"))


def evals_of(workdir: pathlib.Path) -> list[dict]:
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    by_step = {r["step"]: r for r in rows if r["kind"] == "eval"}   # a resumed run repeats
    return [by_step[s] for s in sorted(by_step)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="WORKDIR:LABEL (the workdir's eval rows)")
    parser.add_argument("--out", required=True, help="PNG path")
    parser.add_argument("--mean-face", help="scripts/mean_face_errors.py's JSON")
    args = parser.parse_args()
    baseline = json.loads(pathlib.Path(args.mean_face).read_text()) if args.mean_face else None
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), dpi=100)
    print("| run | step | " + " | ".join(
        k for key, rigid, _ in PANELS for k in (key, rigid) if k) + " |")
    print("|---|---|" + "---|" * sum(1 + (r is not None) for _, r, _ in PANELS))
    for k, spec in enumerate(args.runs):
        path, _, label = spec.partition(":")
        evals = evals_of(pathlib.Path(path))
        steps = [e["step"] for e in evals]
        colour = f"C{k}"
        for ax, (key, rigid, title) in zip(axes, PANELS, strict=True):
            if key not in evals[0]:
                continue
            ax.plot(steps, [e[key] for e in evals], color=colour, label=label or path)
            if rigid:
                ax.plot(steps, [e[rigid] for e in evals], color=colour, ls="--", lw=0.8)
            if baseline is None:
                ax.axhline(evals[0][key], color=colour, ls=":", lw=0.8)
            ax.set(title=title, xlabel="step")
        for e in (evals[0], evals[-1]):
            print(f"| {label or path} | {e['step']} | " + " | ".join(
                f"{e[x]:.3f}" for key, rigid, _ in PANELS for x in (key, rigid)
                if x and x in e) + " |")
    if baseline is not None:
        print("| mean face | - | " + " | ".join(
            f"{baseline[x]:.3f}" for key, rigid, _ in PANELS for x in (key, rigid) if x) + " |")
        for ax, (key, _, _) in zip(axes, PANELS, strict=True):
            ax.axhline(baseline[key], color="k", ls=":", lw=1.0, label="mean face")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(args.out)


if __name__ == "__main__":
    main()

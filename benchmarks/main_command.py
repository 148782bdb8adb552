"""The README's main command, end to end: wall time, first-step time and peak memory.

    python benchmarks/main_command.py [--steps 20] [--runs 2]

Runs what a newcomer copies after the install — `jaxface synth` (16 identities x 4) and
`jaxface train --config=configs/synthetic.py` for ``--steps`` steps — in a temporary folder
with an empty XLA compilation cache, then ``--runs`` - 1 more times with that cache warm (a
new work dir each time, so each run trains from scratch). Each command is a child process;
its peak RSS comes from ``os.wait4`` (that child only). The first run is the reference of
the ratio column. Prints one table.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import re
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run(command: list[str], cwd: pathlib.Path, env: dict) -> tuple[float, float, str]:
    """-> (wall s, peak RSS GB, output) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code:
        sys.exit(f"{' '.join(command)} failed ({code}):\n{output[-3000:]}")
    return time.perf_counter() - start, usage.ru_maxrss / 2**20, output


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    jaxface = [sys.executable, "-m", "jaxface.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        env = dict(os.environ, XDG_CACHE_HOME=str(tmp / "cache"))
        env.pop("JAX_COMPILATION_CACHE_DIR", None)
        synth_s, synth_gb, _ = run(jaxface + ["synth", "--out", "runs/synth", "--identities",
                                              "16", "--per-identity", "4"], tmp, env)
        rows = []
        for i in range(args.runs):
            wall, gb, out = run(jaxface + ["train", f"--config={ROOT / 'configs/synthetic.py'}",
                                           f"--workdir=runs/demo{i}",
                                           f"--config.train.steps={args.steps}"], tmp, env)
            first = re.search(r"the first step took ([\d.]+) s", out)
            rate = re.findall(r"img/s=([\d.]+)", out)
            rows.append((("empty" if i == 0 else "warm") + " compilation cache", wall,
                         float(first.group(1)) if first else float("nan"),
                         float(rate[-1]) if rate else float("nan"), gb))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}")
    print(f"jaxface synth (16 x 4): {synth_s:.1f} s, peak RSS {synth_gb:.2f} GB")
    print(f"jaxface train, {args.steps} steps (configs/synthetic.py):")
    print("| run | wall s | first step s | img/s (last log) | peak RSS GB | wall / first run |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, wall, first, rate, gb in rows:
        print(f"| {name} | {wall:.1f} | {first:.1f} | {rate:.1f} | {gb:.2f} | "
              f"{wall / rows[0][1]:.2f} |")


if __name__ == "__main__":
    main()

"""Gather one export of each kind from a run directory into a bundle for bench/gpu_check.py.

    .venv/bin/python bench/gpu_bundle.py [RUN_DIR] [--out .mme-factory/gpu-bundle] [--kinds K ...]

RUN_DIR defaults to the newest run under the local state directory. Each kind keeps only
`model.pt` and `export.json` (the embedding kind its query encoder: the article encoder has the
same network). The bundle must stay small enough to carry to a GPU machine; the kinds that do
not fit under `--max-mib` are left out and named.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from mme_factory.settings import load_settings

SOURCES = {
    "embedding": Path("embedding") / "query",
    "classifier": Path("classifier"),
    "autocomplete": Path("autocomplete"),
}
# Smallest first, so that the most kinds fit.
ORDER = ("autocomplete", "embedding", "classifier")
FILES = ("model.pt", "export.json")
MIB = 1024**2


def newest_run() -> Path:
    runs = sorted(
        (run for run in load_settings().runs_dir.glob("*/*") if (run / "run.json").is_file()),
        key=lambda run: run.stat().st_mtime,
    )
    if not runs:
        raise SystemExit("no run directory found: onboard a customer first (make demo)")
    return runs[-1]


def make_bundle(run: Path, out: Path, max_mib: float, kinds: list[str]) -> list[str]:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    total, left_out = 0.0, []
    for kind in (kind for kind in ORDER if kind in kinds):
        source = run / SOURCES[kind]
        if not (source / "model.pt").is_file():
            left_out.append(f"{kind} (not exported in {run})")
            continue
        size = sum((source / name).stat().st_size for name in FILES) / MIB
        if total + size > max_mib:
            left_out.append(f"{kind} ({size:.1f} MiB would pass {max_mib:g} MiB)")
            continue
        (out / kind).mkdir()
        for name in FILES:
            shutil.copyfile(source / name, out / kind / name)
        total += size
        print(f"{kind}: {size:.1f} MiB from {source}")
    print(f"bundle {out}: {total:.1f} MiB")
    return left_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, nargs="?")
    parser.add_argument("--out", type=Path, default=Path(".mme-factory/gpu-bundle"))
    parser.add_argument("--max-mib", type=float, default=50.0)
    parser.add_argument("--kinds", nargs="+", choices=ORDER, default=list(ORDER))
    args = parser.parse_args()
    left_out = make_bundle(args.run or newest_run(), args.out, args.max_mib, args.kinds)
    for item in left_out:
        print(f"left out: {item}")


if __name__ == "__main__":
    main()

"""A 20-case sweep of 10,000 paths each on the base scenario: serial and with a local process
pool (issue target: report the time and the speed-up). Each measured in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RUN = """
import json, time
from concurrent.futures import ProcessPoolExecutor
import finmodel
if __name__ == "__main__":
    sc = finmodel.load_scenario("base")
    grid = {{"eib.margin": [0.005, 0.0075, 0.01, 0.0125, 0.015],
             "eib.tenor_years": [10, 12, 15, 18]}}
    finmodel.simulate(sc, paths=256)  # warm-up: imports
    t0 = time.perf_counter()
    if {workers} > 1:
        with ProcessPoolExecutor({workers}) as pool:
            df = finmodel.sweep(sc, grid, paths=10_000, executor=pool)
    else:
        df = finmodel.sweep(sc, grid, paths=10_000)
    print(json.dumps({{"seconds": time.perf_counter() - t0, "cases": int(df["case"].nunique())}}))
"""


def _fresh(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    serial = _fresh(RUN.format(workers=1))
    pooled = _fresh(RUN.format(workers=2))
    print(f"sweep(base, 20 cases x 10,000 paths):     serial {serial['seconds']:6.1f} s, "
          f"process pool (2) {pooled['seconds']:6.1f} s, speed-up "
          f"{serial['seconds'] / pooled['seconds']:.2f}x")


if __name__ == "__main__":
    main()

"""Monte Carlo speed and memory (issue targets in brackets), each measured in a fresh process
after a warm-up run (imports, compiled kernels from numba's cache); times are the best of
``repeat`` runs, as ``timeit`` reports, because this VM varies by +-15 % from run to run.

The full model: operations, financing, the fund's tranches, per-path and per-factory KPIs.

* simulate(base, 10,000 paths), best of five         [<= 0.5 s, the app's budget; <= 1 s]
* simulate(thirteen_factories, 100,000 paths)         [<= 8 s, <= 2 GB peak]
* operations per (path, factory), timed inside simulate (one thread), vs the per-path Python
  reference model                                                      [>= 100x]
* simulate(base, 1,000,000 paths, per-path KPIs only) [peak < 2 GB]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RUN = """
import json, resource, time
import finmodel
sc = finmodel.load_scenario({scenario!r})
finmodel.simulate(sc, paths=256, seed=1)  # warm-up: imports, scipy distributions
best = float("inf")
for _ in range({repeat}):
    res = None  # free the previous run's results before the next
    t0 = time.perf_counter()
    res = finmodel.simulate(sc, paths={paths}, seed=0, factory_kpis={factory_kpis})
    best = min(best, time.perf_counter() - t0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": best, "peak_mb": peak, "paths": res.n_paths}}))
"""

RATIO = """
import json, sys, time
import numpy as np
sys.path.insert(0, {tests!r})
import finmodel
from finmodel import engine
from finmodel.drivers import drivers_from_draws
from finmodel.operations import operate
from finmodel.sampling import make_design, path_noise, scalar_draws
from finmodel.simulation import default_chunk_size
from reference_model import drivers_row, factory_reference
sc = finmodel.load_scenario("base")
def drivers(n):
    design = make_design(sc, n, 0, "mc")
    return drivers_from_draws(sc, scalar_draws(sc, design, 0, n), n, path_noise(sc, 0, 0, n))
chunk = default_chunk_size(sc)  # operations run on chunks of this many paths in simulate
small = drivers(100)
# operations as simulate runs them: engine.operate timed inside simulate (one thread), per
# (path, factory); best of three runs of eight chunks
spent = {{"seconds": 0.0, "rows": 0}}
def timed_operate(d):
    t0 = time.perf_counter()
    out = operate(d)
    spent["seconds"] += time.perf_counter() - t0
    spent["rows"] += d.n_paths * d.n_factories
    return out
engine.operate = timed_operate
finmodel.simulate(sc, paths=chunk, seed=1, threads=1)
vec = float("inf")
for _ in range(3):
    spent.update(seconds=0.0, rows=0)
    finmodel.simulate(sc, paths=8 * chunk, seed=0, threads=1)
    vec = min(vec, spent["seconds"] / spent["rows"])
engine.operate = operate
# the same call alone in a loop, for comparison (after the runs above: in a fresh process,
# glibc hands each dropped result's memory back and the next call faults it in again, which
# doubled the time per call on this VM; see the README)
big = drivers(chunk)
operate(big)
alone = float("inf")
for _ in range(10):
    t0 = time.perf_counter(); operate(big)
    alone = min(alone, (time.perf_counter() - t0) / (chunk * sc.n_factories))
rows = [drivers_row(small, p, f) for p in range(100) for f in range(sc.n_factories)]
ref = float("inf")
for _ in range(3):
    t0 = time.perf_counter()
    for row in rows:
        factory_reference(row, small.horizon_years)
    ref = min(ref, (time.perf_counter() - t0) / len(rows))
print(json.dumps({{"vectorised_us": vec * 1e6, "alone_us": alone * 1e6, "reference_us": ref * 1e6,
                  "ratio": ref / vec}}))
"""


def _fresh(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(include_million: bool = True) -> None:
    r = _fresh(RUN.format(scenario="base", paths=10_000, repeat=5, factory_kpis=True))
    print(f"simulate(base, 10,000 paths):            {r['seconds']:6.2f} s   [target <= 0.5 s; <= 1 s]")
    r = _fresh(RUN.format(scenario="thirteen_factories", paths=100_000, repeat=2, factory_kpis=True))
    print(f"simulate(thirteen_factories, 100,000):   {r['seconds']:6.2f} s, peak {r['peak_mb']:,.0f} MB "
          f"  [target <= 8 s, <= 2,048 MB]")
    r = _fresh(RATIO.format(tests=str(ROOT / "tests")))
    print(f"operations per (path, factory):          {r['vectorised_us']:6.1f} us in simulate vs "
          f"{r['reference_us']:,.0f} us per-path Python: {r['ratio']:,.0f}x   [target >= 100x]"
          f" ({r['alone_us']:.1f} us alone in a loop)")
    if include_million:
        r = _fresh(RUN.format(scenario="base", paths=1_000_000, repeat=1, factory_kpis=False))
        print(f"simulate(base, 1,000,000, path KPIs):    {r['seconds']:6.1f} s, peak {r['peak_mb']:,.0f} MB "
              f"  [target peak < 2,048 MB]")


if __name__ == "__main__":
    main(include_million="--quick" not in sys.argv)

"""Results that persist: ``to_xarray`` and ``save`` of 100,000 paths x 13 factories (KPIs) and
of 10,000 paths' full (path, factory, year) cube of every line item, each in a fresh process;
time of each call and the process's peak memory after it (the run's own peak included; the
results are dropped before ``load``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RUN = """
import json, resource, tempfile, time
import finmodel
sc = finmodel.load_scenario({scenario!r})
res = finmodel.simulate(sc, paths={paths}, seed=0)
run_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
ds = res.to_xarray(lines={lines})
xr_s = time.perf_counter() - t0
cube_mb = ds.nbytes / 2**20
ds = None
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
with tempfile.TemporaryDirectory() as tmp:
    t0 = time.perf_counter()
    res.save(tmp + "/run")
    save_s = time.perf_counter() - t0
    res = None
    t0 = time.perf_counter()
    finmodel.Results.load(tmp + "/run")
    load_s = time.perf_counter() - t0
print(json.dumps({{"xarray_s": xr_s, "save_s": save_s, "load_s": load_s, "dataset_mb": cube_mb,
                  "run_peak_mb": run_peak, "peak_mb": peak}}))
"""


def _fresh(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    r = _fresh(RUN.format(scenario="thirteen_factories", paths=100_000, lines="()"))
    print(f"thirteen_factories, 100,000 paths, KPIs:   to_xarray {r['xarray_s']:5.2f} s "
          f"({r['dataset_mb']:,.0f} MB), save {r['save_s']:5.2f} s, load {r['load_s']:5.2f} s, "
          f"peak after to_xarray {r['peak_mb']:,.0f} MB (run alone {r['run_peak_mb']:,.0f} MB)")
    r = _fresh(RUN.format(scenario="base", paths=10_000, lines="list(finmodel.engine.ITEMS)"))
    print(f"base, 10,000 paths, full line-item cube:  to_xarray {r['xarray_s']:5.2f} s "
          f"({r['dataset_mb']:,.0f} MB), save {r['save_s']:5.2f} s, load {r['load_s']:5.2f} s, "
          f"peak after to_xarray {r['peak_mb']:,.0f} MB (run alone {r['run_peak_mb']:,.0f} MB)")


if __name__ == "__main__":
    main()

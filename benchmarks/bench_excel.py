"""Excel export speed (issue target: thirteen_factories in at most 5 s), in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RUN = """
import json, tempfile, time
from pathlib import Path
import finmodel
sc = finmodel.load_scenario("thirteen_factories")
res = finmodel.simulate(sc, paths=1_000, seed=0)
with tempfile.TemporaryDirectory() as tmp:
    finmodel.export_excel(finmodel.load_scenario("base"), Path(tmp) / "warm.xlsx")  # imports
    t0 = time.perf_counter()
    finmodel.export_excel(sc, Path(tmp) / "base_case.xlsx")
    base = time.perf_counter() - t0
    t0 = time.perf_counter()
    finmodel.export_excel(sc, Path(tmp) / "with_results.xlsx", results=res)
    full = time.perf_counter() - t0
print(json.dumps({"base_case": base, "with_results": full}))
"""


def main() -> None:
    out = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"export_excel(thirteen_factories):        {r['base_case']:6.2f} s base case, "
          f"{r['with_results']:6.2f} s with 1,000-path results   [target <= 5 s]")


if __name__ == "__main__":
    main()

"""Excel export speed (target: thirteen_factories with Monte Carlo results in at most 2 s), in a
fresh process, and the time LibreOffice Calc takes to open, recalculate and save that workbook
(reported; skipped without LibreOffice)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RUN = """
import json, sys, time
from pathlib import Path
import finmodel
out = Path(sys.argv[1])
sc = finmodel.load_scenario("thirteen_factories")
res = finmodel.simulate(sc, paths=1_000, seed=0)
finmodel.export_excel(finmodel.load_scenario("base"), out / "warm.xlsx")  # imports
t0 = time.perf_counter()
finmodel.export_excel(sc, out / "base_case.xlsx")
base = time.perf_counter() - t0
t0 = time.perf_counter()
finmodel.export_excel(sc, out / "with_results.xlsx", results=res)
full = time.perf_counter() - t0
print(json.dumps({"base_case": base, "with_results": full}))
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", RUN, tmp], capture_output=True, text=True, check=True,
                             cwd=ROOT)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"export_excel(thirteen_factories):        {r['base_case']:6.2f} s base case, "
              f"{r['with_results']:6.2f} s with 1,000-path results   [target <= 2 s]")
        soffice = shutil.which("soffice") or shutil.which("libreoffice")
        if soffice is None:
            print("LibreOffice recalculation:               skipped (no soffice)")
            return
        profile = f"-env:UserInstallation=file://{tmp}/profile"
        convert = [soffice, profile, "--headless", "--calc", "--convert-to", "xlsx", "--outdir",
                   f"{tmp}/recalculated"]
        subprocess.run([*convert, f"{tmp}/warm.xlsx"], check=True, capture_output=True)  # profile
        t0 = time.perf_counter()
        subprocess.run([*convert, f"{tmp}/with_results.xlsx"], check=True, capture_output=True)
        print(f"LibreOffice open, recalculate and save:  {time.perf_counter() - t0:6.2f} s "
              f"(thirteen factories, 4 cases)   [reported]")


if __name__ == "__main__":
    main()

"""Run every benchmark: ``python benchmarks/run.py`` (``--quick`` skips the 1M-path run)."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_app
import bench_excel
import bench_irr
import bench_simulate
import bench_store
import bench_sweep


def main() -> None:
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{__import__('os').cpu_count()} cores")
    bench_irr.main()
    bench_simulate.main(include_million="--quick" not in sys.argv)
    bench_sweep.main()
    bench_store.main()
    bench_excel.main()
    bench_app.main()


if __name__ == "__main__":
    main()

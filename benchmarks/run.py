"""Run every benchmark: ``python benchmarks/run.py``. Figures go in the README."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_irr


def main() -> None:
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{__import__('os').cpu_count()} cores")
    bench_irr.main()


if __name__ == "__main__":
    main()

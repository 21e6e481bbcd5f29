"""Table 4 of the paper (seconds per iteration, iterations and minutes per epoch) and
evaluation cost: the same as ``mgnm-pyg bench``, which holds the code.

    python benchmarks/runtime.py --datasets "toys synthetic:musical-instruments" \
        --device cpu --threads 2 --eval-records 2000 --out bench.json --markdown bench.md
"""

from __future__ import annotations

from mgnm_pyg.cli.bench import bench

if __name__ == "__main__":
    bench(prog_name="benchmarks/runtime.py")

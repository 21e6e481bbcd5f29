"""The paper's Tables 2 and 3 and Figures 3, 4 and 7: ``mgnm-pyg reproduce`` as a script.

    python benchmarks/reproduce.py table2 --data toys --seeds 5 --epochs 30
    python benchmarks/reproduce.py table2 --data synthetic:tiny --quick    # smoke check

The commands are in :mod:`mgnm_pyg.cli.reproduce`, the code behind them in
:mod:`mgnm_pyg.experiments`.
"""

from __future__ import annotations

from mgnm_pyg.cli.reproduce import reproduce

if __name__ == "__main__":
    reproduce(prog_name="benchmarks/reproduce.py")

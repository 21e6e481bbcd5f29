"""``python -m mgnm_pyg.cli``: the ``mgnm-pyg`` command (what ``torchrun -m`` launches)."""

from mgnm_pyg.cli import main

if __name__ == "__main__":
    main(prog_name="mgnm-pyg")

"""Packaged presets: TOML files of settings, read by ``mgnm-pyg train --preset NAME``.

- ``paper``: the paper's model and protocol (SPEC; the defaults of every option).
- ``authors``: MGNM as the authors' TensorFlow code computes it (SPEC, "The authors'
  code, as it computes"): per-position capsule maps, random routing logits, their BiLSTM,
  ``q_k = o_k``, the raw user-free adjacency, levels from level 0 with a bias, half the
  L2, ``theta1 = 1e-5``, 42 records a batch, 50 epochs without early stopping (selection
  on validation GAUC; their code selects on test).
- ``tuned``: the project's recommended MGNM; each departure from the paper is a named
  option, and README.md gives its measured effect.
"""

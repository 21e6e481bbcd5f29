"""Experiments built on the trainer: the paper's tables and figures as sets of training
runs, their reports and t-tests (``mgnm-pyg reproduce``), the Table 4 runtime benchmark
(``mgnm-pyg bench``) and hyper-parameter search (``mgnm-pyg tune``)."""

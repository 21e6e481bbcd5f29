"""Experiments: the paper's tables and figures as sets of training runs, their reports
and t-tests, and the Table 4 runtime benchmark (``mgnm-pyg reproduce``, ``mgnm-pyg bench``)."""

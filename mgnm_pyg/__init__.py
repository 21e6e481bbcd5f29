"""mgnm-pyg: MGNM, the multi-grained sequential recommender, on PyTorch Geometric.

Reference: Yu Tian, Jianxin Chang, Yanan Niu, Yang Song, Chenliang Li. "When
Multi-Level Meets Multi-Interest: A Multi-Grained Neural Model for Sequential
Recommendation". SIGIR 2022 (arXiv 2205.01286).
"""

__version__ = "0.1.0"

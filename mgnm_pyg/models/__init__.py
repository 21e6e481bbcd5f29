"""Recommender models."""

from .mgnm import MGNM, MGNMEncoding

__all__ = ["MGNM", "MGNMEncoding"]

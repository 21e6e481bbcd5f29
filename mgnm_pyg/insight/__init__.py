"""What a trained model learned: arrays (adjacency, levels, routing), their figures, and
how personal its rankings are (``mgnm-pyg visualize``)."""

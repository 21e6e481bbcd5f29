"""Using a trained run: top-K recommendations for a user, and evaluating its checkpoint."""

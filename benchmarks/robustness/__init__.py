"""Robustness: damaged containers, killed processes, and the same pixels from every installation."""

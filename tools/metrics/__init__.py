"""Metrics of the tracking plan by persona, computed in SQL."""

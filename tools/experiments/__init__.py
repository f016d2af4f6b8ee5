"""A/B and shadow experiments. So far: GrowthBook-compatible assignment (hashing and bucketing)."""

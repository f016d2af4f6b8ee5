"""Deterministic, LLM-free domain code that the agents call and the service exposes."""

"""The retro's deterministic parts: signals, theory mapping inputs, grounding, prioritisation.

The graph that runs them is agents.retro; nothing here imports an LLM framework.
"""

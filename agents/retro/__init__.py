"""The retro agent: a LangGraph graph from a sprint or deployment window to grounded insights and filed tickets.

`graph.py` wires the nodes, `runner.py` runs, resumes and approves retros on a checkpointer.
"""

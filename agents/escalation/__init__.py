"""The escalation agent: triage, correlation, owner routing and tickets for firing escalations (LangGraph)."""

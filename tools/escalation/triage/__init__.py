"""Escalation triage without an LLM: context gathering, evidence records, correlation into incidents, owner routing
and the rules triage (the escalation agent in agents/escalation calls these, and falls back to them)."""

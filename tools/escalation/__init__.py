"""Auto-escalation: rules over metrics and KPIs per persona, an alert state machine, grouped notifications."""

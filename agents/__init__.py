"""LangGraph agents (the retro and escalation agents): the only code that imports langgraph/langchain/openai."""

"""Journey surveys: definitions, trigger evaluation with fatigue control, validated responses, analytics."""

"""Event ingestion: the Segment/PostHog wire formats → canonical events → the store, one code path."""

"""Repositories: the SQL each domain needs, on a Connection handed in by the caller's transaction."""

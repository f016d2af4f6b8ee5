"""Outbound notifications: signing, delivery with retries, and the outbox they are written to."""

"""PII redaction for free text leaving the store towards an LLM: e-mail addresses and phone numbers.

Stored answers stay raw (the team may need them); only exports redact, so a prompt never carries contact data.
"""

from __future__ import annotations

import re

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# International or national numbers: 7+ digits with optional +, spaces, dots, dashes and parentheses between.
# A date (2026-03-02, 12.03.2026) has 8 digits too but is not contact data: a match may not start with one.
PHONE = re.compile(
    r"(?<![\w])(?!\d{4}-\d{2}-\d{2}(?!\d)|\d{1,2}\.\d{1,2}\.\d{4}(?!\d))\+?\(?\d[\d\s().-]{5,}\d(?![\w])"
)


def redact_pii(text: str) -> str:
    """Replace e-mail addresses with [email] and phone-like numbers of 7+ digits with [phone]."""
    redacted = EMAIL.sub("[email]", text)
    return PHONE.sub(_phone, redacted)


def _phone(match: re.Match[str]) -> str:
    digits = sum(character.isdigit() for character in match.group(0))
    return "[phone]" if digits >= 7 else match.group(0)

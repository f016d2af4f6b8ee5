"""Errors of the survey service: each names the field or question that is wrong, for 4xx and exit 2."""

from __future__ import annotations


class SurveyInputError(ValueError):
    """A survey definition or request is invalid; `field` names the offending input (HTTP 422, exit 2)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class SurveyStateError(SurveyInputError):
    """Valid request, wrong state: a survey id taken, a display already closed, an answer already given (409)."""


class SurveyNotFoundError(LookupError):
    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key!r} does not exist")
        self.kind = kind
        self.key = key

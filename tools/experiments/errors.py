"""Errors of the experiments service: each names the field or the state that is wrong, for 4xx and exit 2."""

from __future__ import annotations


class ExperimentInputError(ValueError):
    """An experiment definition or request is invalid; `field` names the offending input (HTTP 422, exit 2)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ExperimentStateError(ExperimentInputError):
    """The request is valid but the experiment's status forbids it (start twice, assign on a draft; HTTP 409)."""


class ExperimentNotFoundError(LookupError):
    def __init__(self, key: str) -> None:
        super().__init__(f"experiment {key!r} does not exist")
        self.key = key

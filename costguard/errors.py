"""Expected failures: each carries its HTTP status and one sentence telling the user what to fix."""

from __future__ import annotations

from typing import Any


class CostguardError(Exception):
    status_code = 400

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(CostguardError):
    status_code = 422


class NotFound(CostguardError):
    status_code = 404


class Conflict(CostguardError):
    status_code = 409


class PreconditionFailed(CostguardError):
    status_code = 412


class PreconditionRequired(CostguardError):
    status_code = 428


class PayloadTooLarge(CostguardError):
    status_code = 413


class Unauthorized(CostguardError):
    status_code = 401


class Forbidden(CostguardError):
    status_code = 403

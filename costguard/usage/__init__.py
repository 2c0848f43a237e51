"""Usage records: validation, idempotent storage, file importers and the HTTP endpoint."""

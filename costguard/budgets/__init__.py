"""Budgets: schema, calendar periods, storage, budgets-as-code and the HTTP endpoints."""

"""costguard: a tenant cost guard for multi-tenant LLM platforms."""

__version__ = "0.1.0"

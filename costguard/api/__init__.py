"""The HTTP API and the admin console."""

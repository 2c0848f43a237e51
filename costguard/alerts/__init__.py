"""Alerts: state machine rows, the outbox, and delivery to Alertmanager and webhooks."""

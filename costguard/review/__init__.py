"""Self-tuning: the alert review that measures how often costguard's alerts were wrong."""

"""Evaluation: spend per budget scope and period, forecast, burn rate, state."""

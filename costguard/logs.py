"""Structured logs: an event name plus the record's ``extra`` fields rendered as key=value pairs."""

from __future__ import annotations

import logging

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class KeyValueFormatter(logging.Formatter):
    """``2026-12-04T10:00:00 INFO costguard.evaluation.jobs evaluation.cycle_done budgets=4 fired=2``."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        if not fields:
            return line
        return (
            line
            + " "
            + " ".join(
                f"{key}={value!r}" if isinstance(value, str) and " " in value else f"{key}={value}"
                for key, value in fields.items()
            )
        )


def configure(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)

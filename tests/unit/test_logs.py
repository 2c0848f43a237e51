import logging

from costguard.logs import KeyValueFormatter


def test_extra_fields_are_rendered_as_key_value_pairs():
    record = logging.LogRecord("costguard.x", logging.INFO, __file__, 1, "usage.batch_rejected", None, None)
    record.reason = "conflict"
    record.records = 3
    line = KeyValueFormatter("%(levelname)s %(message)s").format(record)
    assert line == "INFO usage.batch_rejected reason=conflict records=3"

"""File importers: each yields (line number, raw record) so errors can name the file and line.

A row that cannot even be read as a record (bad JSON, wrong number of columns) is yielded as a
``RowProblem`` rather than raised, so ``--skip-invalid`` can set it aside and go on; a file
that cannot be read at all (bad header, byte-order mark) raises ``FileFormatError``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from costguard.usage.schemas import FIELDS
from costguard.usage.wire import parse_line

FORMATS = ("auto", "jsonl", "csv", "focus")


class FileFormatError(ValueError):
    """A file that cannot be read as the format it claims; the message names file, line and column."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A row that is not a record at all; ``where`` is the column or field to name."""

    where: str
    message: str
    text: str | None = None


# One decoder, built once (json.loads with options builds a new one per call): every non-integer
# number, and NaN/Infinity, is read as an exact Decimal, never through a float.
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=Decimal)


def loads(text: str | bytes) -> Any:
    """JSON with every non-integer number (and NaN/Infinity) read as an exact Decimal, never a float."""
    return _DECODER.decode(text if isinstance(text, str) else text.decode("utf-8"))


def open_text(path: str) -> IO[str]:
    """Open a file (or ``-`` for stdin) as UTF-8 text, transparently un-gzipping gzip input."""
    # The returned wrapper owns and closes the file.
    raw: Any = sys.stdin.buffer if path == "-" else Path(path).open("rb")  # noqa: SIM115
    if not hasattr(raw, "peek"):
        raw = io.BufferedReader(raw)
    if raw.peek(2)[:2] == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.GzipFile(fileobj=raw), encoding="utf-8", newline="")
    return io.TextIOWrapper(raw, encoding="utf-8", newline="")


def read_jsonl(stream: Iterable[str], name: str, *, currency: str | None = None) -> Iterator[tuple[int, Any]]:
    """(line, raw record); with ``currency``, lines the fast reader accepts come out validated (``UsageIn``)."""
    for number, line in enumerate(stream, start=1):
        if not line or line.isspace():
            continue
        if currency is not None:
            record = parse_line(line, currency=currency)
            if record is not None:
                yield number, record
                continue
        try:
            yield number, loads(line)
        except json.JSONDecodeError as exc:
            yield number, RowProblem(f"column {exc.colno}", f"not valid JSON ({exc.msg})", line.rstrip("\r\n"))
        except ValueError as exc:  # an integer too long to convert
            yield number, RowProblem("line", f"not a usable JSON record ({exc})", line.rstrip("\r\n"))


def read_csv(stream: Iterable[str], name: str) -> Iterator[tuple[int, Any]]:
    """CSV with the usage record's field names as columns; ``attributes`` holds a JSON object."""
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        return
    unknown = [column for column in header if column not in FIELDS]
    if unknown:
        raise FileFormatError(
            f"{name}:1: column {header.index(unknown[0]) + 1} ({unknown[0]!r}) is not a usage record field"
        )
    width = len(header)
    for cells in reader:
        line = reader.line_num
        if not cells:
            continue
        if len(cells) != width:
            yield line, RowProblem("line", f"has {len(cells)} columns but the header has {width}", ",".join(cells))
            continue
        record: dict[str, Any] = {key: (value or None) for key, value in zip(header, cells, strict=True)}
        if record.get("attributes"):
            try:
                record["attributes"] = loads(record["attributes"])
            except ValueError as exc:
                yield line, RowProblem("attributes", f"not valid JSON ({exc})", ",".join(cells))
                continue
        yield line, record


def detect_format(path: str, first_line: str) -> str:
    lowered = path.lower().removesuffix(".gz")
    if lowered.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if lowered.endswith(".csv") or ("," in first_line and not first_line.lstrip().startswith("{")):
        columns = {c.strip().strip('"').lstrip("\ufeff") for c in first_line.split(",")}
        return "focus" if {"ChargePeriodStart", "BilledCost"} & columns else "csv"
    if first_line.lstrip().startswith("{"):
        return "jsonl"
    raise FileFormatError(f"{path}: cannot tell the format; pass --format jsonl, csv or focus")

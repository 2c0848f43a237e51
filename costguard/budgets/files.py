"""Budgets-as-code: read a folder of YAML budgets, diff it against the database, apply it atomically."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy.orm import Session

from costguard.budgets import repository, service
from costguard.budgets.schemas import BudgetSpec, validation_messages
from costguard.errors import InvalidInput


class _ExactLoader(yaml.SafeLoader):
    """YAML with floats read as Decimal, so ``amount: 5000.10`` stays exactly what was written."""


def _decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    return Decimal(str(loader.construct_scalar(node)).replace("_", ""))  # type: ignore[arg-type]


_ExactLoader.add_constructor("tag:yaml.org,2002:float", _decimal)


@dataclass(frozen=True, slots=True)
class FileBudget:
    path: str
    line: int
    spec: BudgetSpec


@dataclass(slots=True)
class LoadResult:
    budgets: list[FileBudget] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _documents(path: Path) -> list[tuple[int, Any]]:
    """Each budget mapping in a file with its 1-based line: a file holds one budget, a list, or several docs."""
    text = path.read_text(encoding="utf-8")
    found: list[tuple[int, Any]] = []
    for node in yaml.compose_all(text, Loader=_ExactLoader):
        if node is None:
            continue
        value = _ExactLoader(text).construct_document(node)
        if isinstance(node, yaml.SequenceNode):
            found.extend((item.start_mark.line + 1, data) for item, data in zip(node.value, value, strict=True))
        else:
            found.append((node.start_mark.line + 1, value))
    return found


def load_dir(directory: Path, *, currency: str) -> LoadResult:
    """Read every ``*.yaml``/``*.yml`` in ``directory``; problems come back as ``file:line: message``."""
    result = LoadResult()
    if not directory.is_dir():
        result.errors.append(f"{directory}: no such folder of budgets")
        return result
    seen: dict[str, str] = {}
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            documents = _documents(path)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 1
            result.errors.append(f"{path}:{line}: not valid YAML ({getattr(exc, 'problem', exc)})")
            continue
        for line, data in documents:
            where = f"{path}:{line}"
            try:
                spec = service.parse_spec(data, currency=currency)
            except InvalidInput as exc:
                result.errors.extend(f"{where}: {message}" for message in exc.details or [exc.message])
                continue
            except ValidationError as exc:  # pragma: no cover - parse_spec converts these
                result.errors.extend(f"{where}: {m}" for m in validation_messages(exc.errors()))
                continue
            if spec.id in seen:
                result.errors.append(f"{where}: id {spec.id!r} is already defined at {seen[spec.id]}")
                continue
            seen[spec.id] = where
            result.budgets.append(FileBudget(str(path), line, spec))
    return result


@dataclass(frozen=True, slots=True)
class Change:
    action: str  # create | update | delete
    budget_id: str
    path: str | None
    changed_fields: dict[str, tuple[Any, Any]]
    spec: BudgetSpec | None

    def describe(self) -> str:
        if self.action == "create":
            return f"+ create {self.budget_id} ({self.path})"
        if self.action == "delete":
            return f"- delete {self.budget_id} (no longer in {self.path or 'the folder'})"
        fields = ", ".join(f"{name}: {old!r} -> {new!r}" for name, (old, new) in self.changed_fields.items())
        return f"~ update {self.budget_id}: {fields}"


def plan(session: Session, loaded: list[FileBudget]) -> list[Change]:
    """What ``apply`` would do: create new ids, update changed ones, delete file budgets no longer present."""
    current = {row.id: row for row in repository.list_rows(session)}
    changes: list[Change] = []
    wanted = {fb.spec.id for fb in loaded}
    for fb in loaded:
        row = current.get(fb.spec.id)
        if row is None:
            changes.append(Change("create", fb.spec.id, fb.path, {}, fb.spec))
            continue
        before, after = repository.row_to_spec(row).document(), fb.spec.document()
        diff = {name: (before[name], after[name]) for name in after if before.get(name) != after[name]}
        if row.managed_by_file != fb.path:
            diff["managed_by_file"] = (row.managed_by_file, fb.path)
        if diff:
            changes.append(Change("update", fb.spec.id, fb.path, diff, fb.spec))
    for budget_id, row in current.items():
        if row.managed_by_file and budget_id not in wanted:
            changes.append(Change("delete", budget_id, row.managed_by_file, {}, None))
    return changes


def apply(session: Session, loaded: list[FileBudget], *, actor: service.Actor, now: datetime) -> list[Change]:
    """Carry out the plan in the caller's transaction: all of it or, on any error, none of it."""
    changes = plan(session, loaded)
    for change in changes:
        if change.action == "create":
            assert change.spec is not None
            service.create_budget(session, change.spec, actor=actor, now=now, managed_by_file=change.path)
        elif change.action == "update":
            assert change.spec is not None
            service.update_budget(
                session, change.spec, expected_version=None, actor=actor, now=now, managed_by_file=change.path
            )
        else:
            service.delete_budget(
                session, change.budget_id, expected_version=None, actor=actor, now=now, from_file=True
            )
    return changes

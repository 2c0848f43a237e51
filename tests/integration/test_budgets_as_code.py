"""budgets validate / plan / apply: file:line errors, readable plans, atomic apply."""

from __future__ import annotations

from pathlib import Path

from costguard.budgets.files import apply, load_dir, plan
from costguard.budgets.service import Actor, list_budgets
from costguard.db import transaction, utcnow

ACTOR = Actor("budgets-as-code", "file")


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text)


def test_validate_names_file_and_line(tmp_path):
    write(tmp_path, "a.yaml", "id: ok-one\ntenant: acme\namount: 10\n")
    write(tmp_path, "b.yaml", "- id: fine\n  tenant: t\n  amount: 1\n- id: Bad Id\n  tenant: t\n  amount: 0\n")
    loaded = load_dir(tmp_path, currency="USD")
    assert [b.spec.id for b in loaded.budgets] == ["ok-one", "fine"]
    assert len(loaded.errors) == 2
    assert all(e.startswith(f"{tmp_path / 'b.yaml'}:4: ") for e in loaded.errors)
    assert any("amount: must be greater than zero" in e for e in loaded.errors)


def test_yaml_amounts_stay_exact(tmp_path):
    write(tmp_path, "a.yaml", "id: exact\ntenant: acme\namount: 1234567890123.45\n")
    [budget] = load_dir(tmp_path, currency="USD").budgets
    assert str(budget.spec.amount) == "1234567890123.45"


def test_plan_shows_create_update_and_delete(db, tmp_path):
    write(tmp_path, "a.yaml", "id: keep\ntenant: acme\namount: 10\n")
    write(tmp_path, "b.yaml", "id: drop\ntenant: acme\namount: 10\n")
    with transaction(db.factory) as session:
        apply(session, load_dir(tmp_path, currency="USD").budgets, actor=ACTOR, now=utcnow())
    (tmp_path / "b.yaml").unlink()
    write(tmp_path, "a.yaml", "id: keep\ntenant: acme\namount: 12\nthresholds: [0.9]\n")
    write(tmp_path, "c.yaml", "id: fresh\ntenant: globex\namount: 5\n")
    with transaction(db.factory) as session:
        changes = plan(session, load_dir(tmp_path, currency="USD").budgets)
    described = sorted(c.describe() for c in changes)
    assert described == [
        f"+ create fresh ({tmp_path / 'c.yaml'})",
        f"- delete drop (no longer in {tmp_path / 'b.yaml'})",
        "~ update keep: amount: '10' -> '12', thresholds: [0.8] -> [0.9]",
    ]


def test_apply_of_a_folder_with_one_invalid_file_changes_nothing(db, tmp_path, cli):

    write(tmp_path, "a.yaml", "id: good\ntenant: acme\namount: 10\n")
    write(tmp_path, "b.yaml", "id: bad\ntenant: acme\namount: ten\n")
    result = cli("budgets", "apply", str(tmp_path))
    assert result.exit_code == 1
    assert f"{tmp_path / 'b.yaml'}:1: amount:" in result.output
    assert "nothing was changed" in result.output
    with transaction(db.factory) as session:
        assert list_budgets(session) == []


def test_apply_twice_is_a_no_op(db, tmp_path):
    write(tmp_path, "a.yaml", "id: same\ntenant: acme\namount: 10\n")
    loaded = load_dir(tmp_path, currency="USD").budgets
    with transaction(db.factory) as session:
        assert len(apply(session, loaded, actor=ACTOR, now=utcnow())) == 1
    with transaction(db.factory) as session:
        assert apply(session, loaded, actor=ACTOR, now=utcnow()) == []

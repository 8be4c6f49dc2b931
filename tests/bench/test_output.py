"""The benchmarks' common ending: table and notes printed, rows written as JSON."""

import json

from bench import output


def test_emit_prints_and_writes_rows(tmp_path, capsys):
    rows = [{"method": "dense", "test_accuracy": 0.9}]
    path = tmp_path / "nested" / "rows.json"
    output.emit(rows, "| method |", str(path), notes=["target met: yes"])
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["| method |", "target met: yes", f"wrote {path}"]
    assert json.loads(path.read_text()) == rows


def test_emit_without_a_path_writes_nothing(tmp_path, capsys):
    output.emit([{"a": 1}], "table", None)
    assert capsys.readouterr().out == "table\n"
    assert not list(tmp_path.iterdir())

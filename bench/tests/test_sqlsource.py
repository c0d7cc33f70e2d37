"""The pgbench scripts carry revwallet's SQL byte for byte, and a change in src/ is caught."""

from pathlib import Path

import pytest

from revbench import sqlsource


def test_a_rust_line_continuation_drops_the_newline_and_the_next_indent():
    assert sqlsource.unescape_rust('select a \\\n     from b where c = \\"x\\"') == 'select a from b where c = "x"'


def test_the_deposit_statement_is_built_from_credit_as_the_binary_builds_it():
    statements = sqlsource.source_statements()
    credit = statements["CREDIT"]
    assert statements["MOVE_CREDIT"].startswith(f"with moved as ({credit}), entry as (")
    assert "{update}" not in statements["MOVE_CREDIT"]


def test_placeholders_become_pgbench_variables_and_nothing_else_changes():
    sql = "update t set b = b + $2 where id = $1 and b <= 9 - $2"
    assert sqlsource.to_pgbench(sql, ("id", "amount")) == "update t set b = b + :amount where id = :id and b <= 9 - :amount"


def test_a_placeholder_without_a_variable_is_an_error():
    with pytest.raises(sqlsource.SourceError):
        sqlsource.to_pgbench("select $3", ("id",))


def test_the_committed_scripts_match_the_source():
    assert sqlsource.check() == []


def test_a_changed_constant_in_the_source_is_reported(tmp_path: Path):
    sql_rs = tmp_path / "sql.rs"
    sql_rs.write_text(sqlsource.SQL_RS.read_text().replace(
        "where id = $1 and closed_at is null\"", "where id = $1 and closed_at is null and true\"", 1))
    changed = sqlsource.source_statements(sql_rs=sql_rs)
    scripts = tmp_path / "pgbench"
    scripts.mkdir()
    for name, text in sqlsource.expected_files().items():
        (scripts / name).write_text(text)
    assert changed["GET_OPEN_WALLET"] != sqlsource.source_statements()["GET_OPEN_WALLET"]
    rendered = sqlsource.render(sqlsource.SCRIPTS[0], changed)
    assert rendered != (scripts / sqlsource.SCRIPTS[0].file).read_text()


def test_a_missing_script_is_reported(tmp_path: Path):
    assert any("missing" in problem for problem in sqlsource.check(tmp_path))

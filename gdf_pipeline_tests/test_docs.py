"""The README's data dictionary names every table, view and column the warehouse has, and no
other; the README shows the two newcomer commands and CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

from gdf_pipeline.warehouse import Warehouse

ROOT = Path(__file__).resolve().parent.parent


def documented_columns() -> dict[str, tuple[set[str], bool]]:
    """Each dictionary section's columns, and whether they come from a table of columns."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    dictionary = text.split("### Data dictionary", 1)[1].split("\n## ", 1)[0]
    sections = re.split(r"^#### ", dictionary, flags=re.MULTILINE)[1:]
    documented = {}
    for section in sections:
        name, _, body = section.partition("\n")
        rows = re.findall(r"^\| `([a-z_0-9]+)` \|", body, flags=re.MULTILINE)
        # Views are described in prose: every backticked name in the section counts.
        names = rows or re.findall(r"`([a-z_0-9]+)`", body)
        documented[name.strip()] = (set(names), bool(rows))
    return documented


def test_data_dictionary_matches_the_warehouse(tmp_path):
    warehouse = Warehouse(
        database=str(tmp_path / "warehouse.duckdb"),
        analytics_copy_path=str(tmp_path / "copy.duckdb"),
    )
    with warehouse.get_connection() as conn:
        actual = {
            f"{schema}.{table}": set(columns)
            for schema, table, columns in conn.execute(
                "SELECT schema_name, table_name, list(column_name) FROM duckdb_columns() "
                "WHERE schema_name IN ('raw', 'oms', 'sync', 'analytics') GROUP BY ALL"
            ).fetchall()
        }
    documented = documented_columns()

    assert set(documented) == set(actual)
    for name, columns in actual.items():
        names, tabulated = documented[name]
        assert columns <= names, f"{name}: undocumented {columns - names}"
        if tabulated:
            assert names == columns, f"{name}: documented but missing {names - columns}"


def test_readme_shows_the_two_commands_and_ci_runs_the_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci

"""The checks on what reaches PostgreSQL: the COPY that carries rows, the statements a read-only engine refuses."""

from __future__ import annotations

import pytest

from todo_data._sqlparse import check_copy, leaves_read_only
from todo_data.errors import InvalidArgumentError


def test_the_copy_sent_must_be_to_stdout() -> None:
    check_copy("COPY (SELECT 1) TO STDOUT (FORMAT 'binary')")
    for target in ("PROGRAM 'rm -rf /'", "'/tmp/rows'"):
        with pytest.raises(InvalidArgumentError, match="not TO STDOUT"):
            check_copy(f"COPY (SELECT 1) TO {target}")
    with pytest.raises(InvalidArgumentError, match="not TO STDOUT"):
        check_copy("COPY tasks FROM STDIN")


def test_savepoints_settings_and_unreadable_text_are_not_taken_for_leaving_read_only() -> None:
    for sql in (
        "SAVEPOINT a",
        "RELEASE SAVEPOINT a",
        "ROLLBACK TO SAVEPOINT a",
        "SET LOCAL work_mem = '8MB'",
        "SET TRANSACTION READ ONLY",
        "RESET ALL",
        "SELECT 1",
        "not sql at all",
    ):
        assert leaves_read_only(sql) is None, sql
    assert leaves_read_only("SELECT 1; COMMIT") == "COMMIT"
    assert leaves_read_only("PREPARE TRANSACTION 'x'") == "PREPARE TRANSACTION"

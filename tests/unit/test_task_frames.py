"""The tasks_frame contract assembled from task columns, whichever backend they came from."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from todo_data.queries import _task_frames

ROWS = [
    ("0000-a", "alice", "Write", None, "pending", 1_735_689_600_000_000, None),
    ("0000-b", "bob", "Call", "about it", "archived", None, 1_735_689_600_000_001),
    ("0000-c", "carol", "Ship", "", None, -1, 0),
]


def test_columns_become_the_contract_dtypes_and_values() -> None:
    frame = _task_frames.tasks_frame_from(_task_frames.sqlite_tasks_table(ROWS))
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == {
        "id": "str",
        "user_id": "str",
        "title": "str",
        "description": "str",
        "status": "category",
        "created_at": "datetime64[us, UTC]",
        "updated_at": "datetime64[us, UTC]",
    }
    assert frame["description"].isna().tolist() == [True, False, False]
    assert frame["status"].isna().tolist() == [False, False, True]  # a NULL status is missing, not a category
    assert frame["created_at"].tolist() == [
        pd.Timestamp("2025-01-01", tz="UTC"),
        pd.NaT,
        pd.Timestamp("1969-12-31 23:59:59.999999", tz="UTC"),
    ]
    assert list(frame["status"].cat.categories) == ["pending", "in_progress", "completed", "archived"]


def test_no_rows_give_the_same_columns_and_dtypes() -> None:
    empty = _task_frames.tasks_frame_from(_task_frames.sqlite_tasks_table([]))
    full = _task_frames.tasks_frame_from(_task_frames.sqlite_tasks_table(ROWS))
    assert empty.empty and list(empty.columns) == list(full.columns)
    assert [str(dtype) for dtype in empty.dtypes] == [str(dtype) for dtype in full.dtypes]


def test_a_status_unknown_to_fixed_categories_is_appended_never_nan() -> None:
    # iter_tasks_frames fixes the categories before streaming; another writer may add a
    # status meanwhile.
    fixed = _task_frames.status_dtype(["archived"])
    statuses = pa.chunked_array([["pending", "blocked"], [None, "archived"]], type=pa.large_string())
    categorical = _task_frames.status_categorical(statuses, fixed)
    assert list(categorical.categories) == ["pending", "in_progress", "completed", "archived", "blocked"]
    assert [None if pd.isna(value) else value for value in categorical] == ["pending", "blocked", None, "archived"]

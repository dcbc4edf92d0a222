"""The arguments every verb checks the same way, and the two shapes of progress callback.

Imports nothing from the package but its errors: every layer may use it.
"""

from __future__ import annotations

from collections.abc import Callable

from todo_data.errors import InvalidArgumentError

#: ``progress(message)``: called with each step's message as it starts (checks, migrations,
#: the round trip).
StepProgress = Callable[[str], object]
#: ``progress(done, total)``: called as rows are done (the seed, the export).
CountProgress = Callable[[int, int], None]


def integer(name: str, value: object, *, least: int | None = None) -> int:
    """``value`` when it is an ``int`` (never a ``bool``) of at least ``least``, else :class:`InvalidArgumentError`."""
    if isinstance(value, bool) or not isinstance(value, int) or (least is not None and value < least):
        wanted = (
            "an integer" if least is None else "a positive integer" if least == 1 else f"an integer of at least {least}"
        )
        raise InvalidArgumentError(f"{name} must be {wanted}, not {value!r}")
    return value

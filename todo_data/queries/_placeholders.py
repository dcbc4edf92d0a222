"""``:name`` parameters in SQL text, found where PostgreSQL's lexer would see them.

SQLAlchemy's ``text()`` finds ``:name`` with a regular expression, so a ``:name`` inside
a string literal, a quoted identifier, a dollar quote or a comment is taken as a
parameter too, and substituting it there can change the statement itself. This scanner
walks the text as PostgreSQL's lexer does and reports a parameter only outside those:

- ``'…'`` strings (``''`` inside), ``E'…'`` strings (backslash escapes too), and the
  ``U&``/``B``/``X``/``N`` prefixed forms, which end like plain strings; a string goes
  on after a newline (``'a'`` newline ``'b'`` is one literal, still an ``E`` string);
- ``"…"`` quoted identifiers (``""`` inside);
- ``$tag$…$tag$`` dollar quotes (a tag is empty, or ASCII letters, ``_``, digits after
  the first, and any character outside ASCII);
- ``-- …`` line comments and ``/* … */`` block comments, which nest.

Outside them, ``:name`` (a letter or ``_`` then word characters, not preceded by a word
character or another colon) is a parameter, also when a cast follows (``:n::int``);
``::`` is a cast and ``\\:`` a literal colon. ``$1``-style placeholders are refused: the
parameters are named. The property tests compare this scanner with PostgreSQL's own
lexer (``pglast.parser.scan``) on generated SQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from todo_data.errors import InvalidArgumentError

_NAME: Final = re.compile(r"[^\W\d]\w*")
# PostgreSQL's lexer works on bytes: any byte from 0x80 up is a letter to it, so any
# character outside ASCII may begin or continue a tag, a digit or a symbol included.
_DOLLAR_TAG: Final = re.compile(r"\$(?:[A-Za-z_\x80-\U0010ffff][A-Za-z_0-9\x80-\U0010ffff]*)?\$")
_POSITIONAL: Final = re.compile(r"\$[0-9]+")
# A string literal goes on after whitespace holding a newline (comments allowed), the
# lexer's ``quotecontinue``: ``'a'\n'b'`` is ``'ab'``, and an ``E'…'`` goes on with its
# backslash escapes.
_CONTINUATION: Final = re.compile(r"(?:[ \t\f\v]|--[^\n\r]*)*[\n\r](?:[ \t\n\r\f\v]|--[^\n\r]*[\n\r])*'")


@dataclass(frozen=True)
class Parameter:
    """One ``:name`` in the text: ``text[start:end]`` is ``":name"``."""

    name: str
    start: int
    end: int


@dataclass(frozen=True)
class ScannedText:
    """SQL text with its parameters found.

    ``end`` is where the statement's text ends: trailing semicolons, whitespace and
    comments after the last semicolon are left out (a comment before it stays, which is
    why :meth:`render` leaves the text on lines of its own when wrapped).
    """

    text: str
    parameters: tuple[Parameter, ...]
    escapes: tuple[int, ...]  # positions of the backslash of each ``\\:`` outside literals
    end: int

    @property
    def names(self) -> tuple[str, ...]:
        """Each parameter's name once, in order of first use."""
        return tuple(dict.fromkeys(parameter.name for parameter in self.parameters))

    def render(self, placeholder: Callable[[str], str]) -> str:
        """The statement (up to :attr:`end`) with each ``:name`` replaced by ``placeholder(name)``."""
        return self.render_at(placeholder)[0]

    def render_at(self, placeholder: Callable[[str], str]) -> tuple[str, tuple[int, ...]]:
        """:meth:`render`, and where in the result each replacement begins."""
        cuts = sorted(
            [(parameter.start, parameter.end, placeholder(parameter.name), True) for parameter in self.parameters]
            + [(position, position + 1, "", False) for position in self.escapes]
        )
        parts: list[str] = []
        starts: list[int] = []
        position = 0
        length = 0
        for start, end, replacement, is_parameter in cuts:
            if start >= self.end:
                break
            parts.append(self.text[position:start])
            length += start - position
            if is_parameter:
                starts.append(length)
            parts.append(replacement)
            length += len(replacement)
            position = end
        parts.append(self.text[position : self.end])
        return "".join(parts), tuple(starts)


def _is_ident_char(char: str) -> bool:
    return char.isalnum() or char in "_$" or ord(char) >= 0x80


def scan(text: str) -> ScannedText:
    """Find the parameters of ``text``; an unterminated literal or comment is an InvalidArgumentError."""
    parameters: list[Parameter] = []
    escapes: list[int] = []
    length = len(text)
    end = 0  # just after the last significant character seen
    last_semicolon_end = -1  # ``end`` as it was before a run of trailing semicolons
    i = 0
    while i < length:
        char = text[i]
        if char.isspace():
            i += 1
            continue
        start = i
        if char == "-" and text.startswith("--", i):
            newline = min((p for p in (text.find("\n", i), text.find("\r", i)) if p >= 0), default=length)
            i = newline
            continue
        if char == "/" and text.startswith("/*", i):
            i = _block_comment_end(text, i)
            continue
        if char == "'" or (char in "eE" and text.startswith("'", i + 1) and _token_start(text, i)):
            i = _string_end(text, i + (char != "'"), backslashes=char != "'")
        elif (
            char in "uU" and text.startswith("&", i + 1) and text[i + 2 : i + 3] in ("'", '"') and _token_start(text, i)
        ):
            i = _string_end(text, i + 2, backslashes=False) if text[i + 2] == "'" else _identifier_end(text, i + 2)
        elif char in "bBxXnN" and text.startswith("'", i + 1) and _token_start(text, i):
            i = _string_end(text, i + 1, backslashes=False)
        elif char == '"':
            i = _identifier_end(text, i)
        elif char == "$" and _token_start(text, i) and (tag := _DOLLAR_TAG.match(text, i)):
            closing = text.find(tag.group(0), tag.end())
            if closing < 0:
                raise InvalidArgumentError(f"the dollar quote {tag.group(0)} opened at {where(text, i)} is not closed")
            i = closing + len(tag.group(0))
        elif char == "$" and _token_start(text, i) and (positional := _POSITIONAL.match(text, i)):
            raise InvalidArgumentError(
                f"{positional.group(0)} at {where(text, i)}: parameters are named, write :name and pass "
                "{'name': value} in params"
            )
        elif char == "\\" and text.startswith(":", i + 1):
            escapes.append(i)
            i += 2
        elif char == ":":
            name = _NAME.match(text, i + 1)
            if text.startswith("::", i):
                i += 2
            elif name and not (i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_:")):
                parameters.append(Parameter(name.group(0), i, name.end()))
                i = name.end()
            else:
                i += 1
        elif _is_ident_char(char):
            i += 1
            while i < length and _is_ident_char(text[i]):
                i += 1
        else:
            i += 1
        if char == ";" and i == start + 1:
            if last_semicolon_end < 0:
                last_semicolon_end = end
            continue
        end = i
        last_semicolon_end = -1
    statement_end = last_semicolon_end if last_semicolon_end >= 0 else end
    return ScannedText(text, tuple(parameters), tuple(escapes), statement_end)


def _token_start(text: str, i: int) -> bool:
    """Whether a token can begin at ``i`` (``e'…'`` is a string, ``name'…'`` is not)."""
    return i == 0 or not _is_ident_char(text[i - 1])


def _string_end(text: str, quote: int, *, backslashes: bool) -> int:
    """Just past the string whose opening quote is at ``quote``."""
    i = quote + 1
    length = len(text)
    while i < length:
        char = text[i]
        if backslashes and char == "\\":
            i += 2
            continue
        if char == "'":
            if text.startswith("'", i + 1):
                i += 2
                continue
            continued = _CONTINUATION.match(text, i + 1)
            if continued is None:
                return i + 1
            i = continued.end()
            continue
        i += 1
    raise InvalidArgumentError(f"the string literal opened at {where(text, quote)} is not closed")


def _identifier_end(text: str, quote: int) -> int:
    i = quote + 1
    while True:
        closing = text.find('"', i)
        if closing < 0:
            raise InvalidArgumentError(f"the quoted identifier opened at {where(text, quote)} is not closed")
        if text.startswith('"', closing + 1):
            i = closing + 2
            continue
        if closing == quote + 1:
            raise InvalidArgumentError(f'the quoted identifier at {where(text, quote)} is empty ("")')
        return closing + 1


def _block_comment_end(text: str, opening: int) -> int:
    depth = 0
    i = opening
    length = len(text)
    while i < length:
        if text.startswith("/*", i):
            depth += 1
            i += 2
        elif text.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    raise InvalidArgumentError(f"the comment opened at {where(text, opening)} is not closed")


def where(text: str, position: int) -> str:
    """``line L, column C`` of ``position`` in ``text``."""
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return f"line {line}, column {column}"

"""The ``:name`` scanner (todo_data/queries/_placeholders.py) against PostgreSQL's own lexer (pglast's scan)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pglast.parser import ParseError, scan

from todo_data.errors import InvalidArgumentError
from todo_data.queries._placeholders import scan as scan_parameters

NAMES = st.sampled_from(["x", "a_1", "é", "select", "_p", "Camel"])
CONTENT = st.lists(st.sampled_from([*"ab :x'\"$-*/\\\n;é", "''", "::", ":x", "--", "/*", "*/", "$$"]), max_size=12).map(
    "".join
)


def _no(closing: str) -> st.SearchStrategy[str]:
    return CONTENT.map(lambda text: text.replace(closing, ""))


def _string(prefix: str) -> st.SearchStrategy[str]:
    # A plain string: '' is the only way to write a quote inside.
    return _no("'").map(lambda body: f"{prefix}'{body}'")


def _escape_string() -> st.SearchStrategy[str]:
    # E'…': backslash escapes too, so a lone backslash is doubled and \' is a quote.
    return _no("'").map(lambda body: "E'" + body.replace("\\", "\\\\") + "\\''':x'")


def _identifier() -> st.SearchStrategy[str]:
    return _no('"').map(lambda body: f'"{body}""x"')


def _dollar() -> st.SearchStrategy[str]:
    # PostgreSQL's lexer takes any character outside ASCII in a tag, a symbol or a digit too.
    return st.tuples(st.sampled_from(["", "t", "tag_1", "é", "€", "٣x", "_…"]), CONTENT).map(
        lambda pair: f"${pair[0]}${pair[1].replace('$', '')}${pair[0]}$"
    )


def _block_comment() -> st.SearchStrategy[str]:
    return st.tuples(_no("*/").map(lambda t: t.replace("/*", "")), _no("*/").map(lambda t: t.replace("/*", ""))).map(
        lambda pair: f"/* {pair[0]} /* nested :x */ {pair[1]} */"
    )


FRAGMENT = st.one_of(
    NAMES.map(lambda name: f":{name}"),
    NAMES.map(lambda name: f":{name}::int"),
    NAMES,
    st.sampled_from(["a::text", "a:b", "1:x", "x$y", "1.5", "1e3", "(", ")", ",", "+", "<>", "[1:2]", ";", "$1"]),
    _string(""),
    _string("U&"),
    _string("B"),
    _string("N"),
    _escape_string(),
    # A string goes on after a newline (a comment may come between), keeping its kind.
    st.tuples(st.sampled_from(["", "E", "U&"]), _no("'"), st.sampled_from(["\n", " -- c\n", "\n\n  "]), _no("'")).map(
        lambda parts: (
            f"{parts[0]}'{parts[1].replace(chr(92), chr(92) * 2) if parts[0] == 'E' else parts[1]}'"
            f"{parts[2]}'{parts[3].replace(chr(92), chr(92) * 2) if parts[0] == 'E' else parts[3]}'"
        )
    ),
    st.sampled_from(["E'x'\n'\\' :x '", "'a' --c\n':x'", "$€$ :x $€$", "$:x"]),
    _identifier(),
    _no('"').map(lambda body: f'U&"{body}"'),
    _dollar(),
    _block_comment(),
    _no("\n").map(lambda body: f"-- {body}\n"),
)
SQL = st.lists(FRAGMENT, max_size=12).flatmap(
    lambda fragments: st.lists(
        st.sampled_from([" ", "\n", "\t"]), min_size=len(fragments), max_size=len(fragments)
    ).map(lambda separators: "SELECT " + "".join(f + s for f, s in zip(fragments, separators, strict=True)))
)


def lexer_parameters(text: str) -> list[tuple[int, str]]:
    """Where PostgreSQL's lexer sees ``:`` followed at once by a name, outside every literal and comment."""
    tokens = scan(text)
    found = []
    for token, following in itertools.pairwise(tokens):
        if token.name != "ASCII_58" or following.start != token.end + 1:
            continue
        word = text[following.start : following.end + 1]
        if following.name not in ("IDENT",) and following.kind == "NO_KEYWORD":
            continue
        if not (word[0].isalpha() or word[0] == "_"):
            continue
        before = text[token.start - 1] if token.start > 0 else " "
        if before.isalnum() or before in "_:":
            continue
        found.append((token.start, word.split("$")[0]))
    return found


@settings(max_examples=400, deadline=None, derandomize=True)
@given(SQL)
def test_the_scanner_finds_the_parameters_postgresqls_lexer_would(text: str) -> None:
    try:
        expected = lexer_parameters(text)
    except ParseError:
        with pytest.raises(InvalidArgumentError):
            scan_parameters(text)
        return
    if any(token.name == "PARAM" for token in scan(text)):
        # Positional placeholders are refused: the lexer sees a PARAM token.
        with pytest.raises(InvalidArgumentError, match=r"\$1"):
            scan_parameters(text)
        return
    found = [(parameter.start, parameter.name) for parameter in scan_parameters(text).parameters]
    assert found == expected


@settings(max_examples=200, deadline=None, derandomize=True)
@given(SQL, st.sampled_from(["'abc", '"abc', "$q$abc", "/* abc", "E'ab\\'"]))
def test_an_unterminated_literal_or_comment_is_refused_as_the_lexer_refuses_it(text: str, tail: str) -> None:
    unterminated = f"{text} {tail}"
    with pytest.raises(ParseError):
        scan(unterminated)
    with pytest.raises(InvalidArgumentError, match=r"not closed|is empty|parameters are named"):
        scan_parameters(unterminated)
    with pytest.raises(InvalidArgumentError, match="not closed"):
        scan_parameters(f"SELECT 1 {tail}")


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("SELECT 1;", "SELECT 1"),
        ("SELECT 1 ; ;; -- done\n", "SELECT 1"),
        ("SELECT 1 -- note", "SELECT 1"),
        ("SELECT :a, ':a' -- :a", "SELECT ?, ':a'"),
        ("SELECT 'x;y';", "SELECT 'x;y'"),
        ("SELECT a\\:b", "SELECT a:b"),
        ("SELECT 1; SELECT 2;", "SELECT 1; SELECT 2"),
    ],
)
def test_render_drops_trailing_semicolons_and_comments_only(text: str, rendered: str) -> None:
    assert scan_parameters(text).render(lambda _name: "?") == rendered

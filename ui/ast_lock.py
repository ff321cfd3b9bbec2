"""One `ast.parse` at a time in this process.

CPython 3.11 keeps the AST constructor's recursion depth in state shared by every thread: two threads
turning a parse into Python objects at once (Streamlit parses each page in its session's script thread;
pytest parses to rewrite and report assertions) can interleave there, and one of them fails with
"SystemError: AST constructor recursion depth mismatch" (python/cpython#106905): a page that does not
load, or a test run that crashes. Parses are rare and short (Streamlit keeps each page's bytecode), so
taking turns costs nothing that shows.
"""

from __future__ import annotations

import ast
import functools
import threading

_LOCK = threading.RLock()  # re-entrant: a finalizer run mid-parse may parse in the same thread


def serialize_ast_parse() -> None:
    """Make `ast.parse` take turns across threads (once per process; later calls do nothing)."""
    if getattr(ast.parse, "takes_turns", False):
        return
    parse = ast.parse

    @functools.wraps(parse)
    def taking_turns(*args, **kwargs):
        with _LOCK:
            return parse(*args, **kwargs)

    taking_turns.takes_turns = True
    ast.parse = taking_turns

"""ast.parse takes turns across threads (ui/ast_lock.py), and still parses."""

import ast
import threading

from ui.ast_lock import _LOCK, serialize_ast_parse


def test_parses_take_turns_and_still_parse():
    serialize_ast_parse()
    serialize_ast_parse()  # once: not wrapped twice
    assert ast.parse.takes_turns and ast.parse.__wrapped__.__module__ == "ast"
    assert isinstance(ast.parse("x = [1, (2, {3: 4})]").body[0], ast.Assign)
    finished = []
    with _LOCK:  # a parse in another thread waits while the lock is held
        worker = threading.Thread(target=lambda: finished.append(ast.parse("y = 1")))
        worker.start()
        worker.join(0.3)
        assert worker.is_alive() and not finished
    worker.join(5)
    assert len(finished) == 1

"""Every deferred call into a widget names the object it belongs to, so Qt drops it with it.

A ``QTimer.singleShot(0, self.method)`` has no context object: when the page dies before the
timer fires, the call still runs, on a deleted widget (it failed CI one run in three, from a
window an earlier test had closed). The suite refuses such calls at run time
(``tests/conftest.py``); this file checks the rule holds in code no test happens to reach, and
that the run-time guard itself works.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QObject, QTimer

import civdesk.ui

UI = Path(civdesk.ui.__file__).parent


def _single_shots(tree: ast.AST):
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "singleShot"):
            yield node


def test_every_single_shot_in_the_ui_has_a_context_object():
    offenders = []
    for path in sorted(UI.rglob("*.py")):
        for call in _single_shots(ast.parse(path.read_text(encoding="utf-8"))):
            if len(call.args) < 3:  # (msec, context, callable)
                offenders.append(f"{path.relative_to(UI)}:{call.lineno}")
    assert offenders == []


def test_the_suite_refuses_a_single_shot_without_a_context_from_civdesk_code(qtbot):
    code = compile("from PySide6.QtCore import QTimer\nQTimer.singleShot(0, print)",
                   "<civdesk code>", "exec")
    with pytest.raises(TypeError, match="without a context object"):
        exec(code, {"__name__": "civdesk.ui.somewhere"})


def test_a_single_shot_with_a_context_is_dropped_when_the_context_dies(qtbot):
    context = QObject()
    fired: list[bool] = []
    QTimer.singleShot(10, context, lambda: fired.append(True))
    shiboken6.delete(context)  # as a closed page's children are
    qtbot.wait(50)
    assert fired == []

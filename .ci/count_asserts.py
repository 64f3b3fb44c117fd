"""Count test functions and assertions under a tests folder: `python .ci/count_asserts.py [DIR]`.

An assertion is an `assert` statement or a `pytest.raises` / `pytest.warns` block; the count is
taken from the syntax tree, so moving tests between files or tiers leaves it unchanged.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

CHECKING_CALLS = {"raises", "warns"}


def counts(root: Path) -> tuple[int, int, int]:
    files = tests = asserts = 0
    for path in sorted(root.rglob("test_*.py")):
        files += 1
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test_"
            ):
                tests += 1
            elif isinstance(node, ast.Assert) or (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in CHECKING_CALLS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "pytest"
            ):
                asserts += 1
    return files, tests, asserts


if __name__ == "__main__":
    files, tests, asserts = counts(Path(sys.argv[1] if len(sys.argv) > 1 else "tests"))
    print(f"{files} test files, {tests} test functions, {asserts} assertions")

"""Static scan for the obvious spellings of forbidden APIs (the runtime guard catches the rest).

The source is parsed, so a name in a comment, a string or a docstring never counts. Imports are
followed (``import torch.nn.functional as F`` makes ``F.softmax`` mean ``torch.nn.functional.softmax``);
a forbidden ``torch.Tensor.<method>`` counts when ``.<method>(...)`` is called on anything but ``self``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass


@dataclass(frozen=True)
class Use:
    line: int
    name: str


def _dotted(node: ast.AST) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def _matches(name: str, forbidden: str) -> bool:
    if forbidden.endswith("*"):
        return name.startswith(forbidden[:-1])
    return name == forbidden or name.startswith(forbidden + ".")


def forbidden_uses(source: str, forbidden: tuple[str, ...]) -> list[Use]:
    tree = ast.parse(source)
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    methods = {f.rsplit(".", 1)[1] for f in forbidden if f.startswith("torch.Tensor.")}
    uses: list[Use] = []

    def check(name: str, line: int) -> None:
        hit = next((f for f in forbidden if _matches(name, f)), None)
        if hit:
            uses.append(Use(line, hit))

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                check(f"{node.module}.{a.name}", node.lineno)
        elif isinstance(node, ast.Import):
            for a in node.names:
                check(a.name, node.lineno)
        elif isinstance(node, (ast.Attribute, ast.Name)) and not isinstance(getattr(node, "ctx", None), ast.Store):
            parts = _dotted(node)
            if parts and parts[0] in aliases:
                check(".".join([aliases[parts[0]], *parts[1:]]), node.lineno)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in methods
                and not (isinstance(node.func.value, ast.Name) and node.func.value.id in ("self", "cls"))):
            parts = _dotted(node.func)
            if not (parts and parts[0] in aliases):  # a module path was checked above
                uses.append(Use(node.lineno, f"torch.Tensor.{node.func.attr}"))
    return sorted(set(uses), key=lambda u: (u.line, u.name))

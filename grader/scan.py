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
    aliases = _aliases(tree)
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


# -- escape hatches: what could reach or disarm the in-process guard ---------------------------------------

FRAMES = "can reach the grader's frames"
INTERNALS = "can reach the grader's objects"
BY_NAME = "reaches attributes by computed names"
UNSEEN = "runs code the scan cannot see"
IMPORTS = "imports modules by computed names"
DISARMS = "can switch off the forbidden-op guard"
BENEATH = "runs code beneath the forbidden-op guard"

# dotted names after following imports, each also the prefix of what it contains
ESCAPE_NAMES = {
    "sys._getframe": FRAMES, "sys._current_frames": FRAMES, "sys.modules": "can reach the grader's modules",
    "inspect.currentframe": FRAMES, "inspect.stack": FRAMES, "inspect.trace": FRAMES,
    "inspect.getouterframes": FRAMES, "inspect.getinnerframes": FRAMES, "inspect.getmembers": BY_NAME,
    "inspect.getattr_static": BY_NAME, "inspect.getclosurevars": INTERNALS, "inspect.unwrap": INTERNALS,
    "traceback.walk_stack": FRAMES, "traceback.walk_tb": FRAMES, "logging.currentframe": FRAMES,
    "operator.attrgetter": BY_NAME, "operator.methodcaller": BY_NAME,
    "grader": "is the grader itself", "ctypes": "can write the process's memory",
    "gc": "can find the grader's objects", "_thread": "starts threads the guard does not see",
    "builtins": "reaches eval, exec and __import__", "pickle": "can call any function by name",
    "_pickle": "can call any function by name", "marshal": UNSEEN, "runpy": UNSEEN, "code": UNSEEN,
    "importlib": IMPORTS, "pkgutil": IMPORTS, "pydoc": IMPORTS, "unittest.mock": "patches objects by computed names",
}
# attribute names on any object (and parts of a dotted module path)
ESCAPE_ATTRIBUTES = {
    **dict.fromkeys(("f_back", "f_globals", "f_locals", "f_builtins", "tb_frame", "gi_frame", "cr_frame",
                     "ag_frame"), FRAMES),
    **dict.fromkeys(("__globals__", "__closure__", "__code__", "__builtins__", "__subclasses__", "__self__",
                     "__import__"), INTERNALS),
    "__getattribute__": BY_NAME, "__wrapped__": "is the unguarded original of a wrapped function",
}
ESCAPE_BUILTINS = {"eval": UNSEEN, "exec": UNSEEN, "compile": UNSEEN, "__import__": IMPORTS,
                   "globals": "reaches __builtins__", "__builtins__": INTERNALS}
# where the exercise also has a forbidden-op guard (a dispatch mode): what switches it off or runs beneath it
ATEN_ESCAPE_NAMES = {"torch.library": BENEATH, "torch._library": BENEATH}
ATEN_ESCAPE_ATTRIBUTES = {"_C": DISARMS, "_python_dispatch": DISARMS, "__torch_dispatch__": BENEATH,
                          "redispatch": "skips the forbidden-op guard"}
BY_NAME_BUILTINS = ("getattr", "setattr", "delattr")
OWN = ("self", "cls")  # a solution's own objects: their attributes, private or computed, are its business


@dataclass(frozen=True)
class Escape:
    line: int
    what: str
    why: str

    def message(self) -> str:
        return f"sandbox: line {self.line} uses {self.what}, which {self.why}; solutions never need it"


def escape_hatches(source: str, aten_guard: bool = False) -> list[Escape]:
    """Spellings that could reach or disarm the in-process guard: frames, the grader's objects, code or
    imports the scan cannot see, attributes by computed or private names (except on ``self``/``cls``);
    ``aten_guard`` adds what could switch off or run beneath a forbidden-op guard."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    names = {**ESCAPE_NAMES, **(ATEN_ESCAPE_NAMES if aten_guard else {})}
    attributes = {**ESCAPE_ATTRIBUTES, **(ATEN_ESCAPE_ATTRIBUTES if aten_guard else {})}
    found: list[Escape] = []

    def dotted(name: str, line: int) -> None:
        hit = next((n for n in names if _matches(name, n)), None)
        if hit:
            found.append(Escape(line, hit, names[hit]))
        found.extend(Escape(line, part, attributes[part]) for part in name.split(".")[1:] if part in attributes)

    called = set()  # getattr & co. called with their name in plain sight, checked like an attribute
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        fn, args = node.func.id, node.args
        if fn in BY_NAME_BUILTINS and len(args) >= 2:
            called.add(node.func)
            name = args[1].value if isinstance(args[1], ast.Constant) and isinstance(args[1].value, str) else None
            if name in attributes:
                found.append(Escape(node.lineno, name, attributes[name]))
            elif _is_own(args[0]):
                pass
            elif name is None:
                found.append(Escape(node.lineno, f"{fn} with a computed name", BY_NAME))
            elif name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
                found.append(Escape(node.lineno, f"{fn} of a private name ({name})", INTERNALS))
        elif fn == "vars" and args and not _is_own(args[0]):
            found.append(Escape(node.lineno, "vars", BY_NAME))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                dotted(a.name, node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                dotted(f"{node.module}.{a.name}", node.lineno)
        elif isinstance(node, ast.Attribute):
            parts = _dotted(node)
            if parts and parts[0] in aliases:
                dotted(".".join([aliases[parts[0]], *parts[1:]]), node.lineno)
            if node.attr in attributes:
                found.append(Escape(node.lineno, node.attr, attributes[node.attr]))
            elif node.attr == "__dict__" and not _is_own(node.value):
                found.append(Escape(node.lineno, "__dict__", BY_NAME))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in attributes:
            found.append(Escape(node.lineno, node.name, attributes[node.name]))  # def __torch_dispatch__
        elif isinstance(node, ast.Name) and node.id in attributes:
            found.append(Escape(node.lineno, node.id, attributes[node.id]))
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store) and node.id not in aliases:
            if node.id in ESCAPE_BUILTINS:
                found.append(Escape(node.lineno, node.id, ESCAPE_BUILTINS[node.id]))
            elif node.id in BY_NAME_BUILTINS and node not in called:  # passed around: its name is unseen
                found.append(Escape(node.lineno, node.id, BY_NAME))
    return sorted(set(found), key=lambda e: (e.line, e.what))


def _aliases(tree: ast.AST) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


def _is_own(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id in OWN

"""The layering rule of DESIGN.md, read from the source with `ast`: imports point down only,
and each third-party library has one home."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "triage"

# Lower layers never import higher ones (equal layers do not import each other either).
LAYERS = {
    "errors": 0, "mailbox.base": 0, "mailbox.utf7": 0, "message": 0, "sample": 0,
    "mailbox": 1, "config": 1, "mailbox.imap": 1, "mailbox.maildir": 1, "store": 1, "facts": 1,
    "learn": 1, "model": 1,
    "planner": 2, "digest": 2, "evaluate": 2,
    "engine": 3,
    "demo": 4, "wizard": 4,
    "cli": 5, "__main__": 6, "__init__": 0,
}  # fmt: skip
# Each third-party library, and the modules allowed to import it.
HOMES = {
    "imapclient": {"mailbox.imap"},
    "sklearn": {"model"},
    "joblib": {"model"},
    "numpy": {"model"},
    "scipy": {"model"},
    "sqlite3": {"store"},
    "click": {"cli", "wizard"},
    "jinja2": {"digest"},
    "bs4": {"message"},
    "lxml": {"message"},
    "keyring": {"config"},
    "platformdirs": {"config"},
}


def modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        out[name.removesuffix(".__init__") if name != "__init__" else name] = ast.parse(
            path.read_text(encoding="utf-8")
        )
    return out


def imports(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                # `from triage.mailbox import utf7` imports the module triage.mailbox.utf7.
                module = f"{node.module}.{alias.name}"
                is_module = module.startswith("triage.") and (
                    (PACKAGE / Path(*module.split(".")[1:])).with_suffix(".py").exists()
                )
                found.add(module if is_module else node.module)
    return found


def test_every_module_has_a_layer() -> None:
    assert set(modules()) <= set(LAYERS), set(modules()) - set(LAYERS)


def test_imports_point_down() -> None:
    wrong = []
    for name, tree in modules().items():
        for target in imports(tree):
            if not target.startswith("triage."):
                continue
            inner = target.removeprefix("triage.")
            if inner == "__version__":
                continue
            if LAYERS.get(inner, 99) >= LAYERS[name] and not inner.startswith(f"{name}."):
                wrong.append(f"{name} (layer {LAYERS[name]}) imports {inner}")
    assert not wrong, wrong


def test_each_library_has_one_home() -> None:
    wrong = []
    for name, tree in modules().items():
        for target in imports(tree):
            top = target.split(".")[0]
            if top in HOMES and name not in HOMES[top]:
                wrong.append(f"{name} imports {top} (its home: {sorted(HOMES[top])})")
    assert not wrong, wrong


def test_the_check_reads_real_imports() -> None:
    """The reader itself: it sees a function-level import and a `from triage import x`."""
    tree = ast.parse(
        "def f():\n    import sqlite3\nfrom triage import engine\n"
        "from triage.mailbox import utf7\nfrom triage.store import Store\n"
    )
    assert imports(tree) == {"sqlite3", "triage.engine", "triage.mailbox.utf7", "triage.store"}

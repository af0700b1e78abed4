"""Each module's `__all__` is honest: it names every public class and function the module
defines, and nothing that isn't there (after httpx's tests/test_exported_members.py)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import assistant

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(assistant.__path__, "assistant.")
    if not m.name.endswith("__main__")  # running it is its only purpose
)


def _defined_here(module: object, name: str) -> list[str]:
    """Public classes and functions whose home is this module (not imported into it)."""
    return sorted(
        n for n, v in vars(module).items()
        if not n.startswith("_") and (inspect.isclass(v) or inspect.isfunction(v))
        and getattr(v, "__module__", None) == name
    )


def test_every_module_is_checked():
    assert {"assistant.assistant", "assistant.retrieval", "assistant.cli"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_all_names_every_public_member_and_only_real_ones(name):
    module = importlib.import_module(name)
    defined = _defined_here(module, name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        assert not defined, f"{name} defines {defined} but has no __all__"
        return
    assert len(exported) == len(set(exported)), f"{name}.__all__ repeats a name"
    assert [n for n in exported if not hasattr(module, n)] == [], f"{name}.__all__ names ghosts"
    assert sorted(set(defined) - set(exported)) == [], (
        f"{name} defines public names missing from __all__: make them private (_name) or "
        "export them"
    )

"""Package data (resources, reply wording, rules): read by name with importlib.resources."""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from typing import Any


def read_text(name: str) -> str:
    """The text of a data file shipped in this package."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def read_toml(name: str) -> dict[str, Any]:
    """A TOML data file, parsed."""
    return tomllib.loads(read_text(name))


def read_json(name: str) -> Any:
    """A JSON data file, parsed."""
    return json.loads(read_text(name))


def read_jsonl(name: str) -> list[Any]:
    """A JSON-lines data file, one parsed value per non-blank line."""
    return [json.loads(line) for line in read_text(name).splitlines() if line.strip()]


__all__ = ["read_json", "read_jsonl", "read_text", "read_toml"]

"""Errors the product raises on purpose; each says who sees it."""

from __future__ import annotations


class ReconnectError(Exception):
    """Base class: a problem with a clear sentence for the person using the product."""


class ConfigError(ReconnectError):
    """Settings are invalid (seen by whoever configures the product)."""


class CorpusError(ReconnectError):
    """A corpus file can't be read or has no text (seen by whoever edits corpus/)."""


class ModelError(ReconnectError):
    """The embedding model is missing or fails its checksum (seen at start-up)."""


class StoreError(ReconnectError):
    """The vector store is unreachable or unreadable (seen by ingest, doctor, search)."""


class QueryError(ReconnectError):
    """A question is empty or unusable (seen by the person asking)."""


class LLMError(ReconnectError):
    """The OpenAI-compatible endpoint failed; callers fall back to the offline reply."""


__all__ = [
    "ConfigError",
    "CorpusError",
    "LLMError",
    "ModelError",
    "QueryError",
    "ReconnectError",
    "StoreError",
]

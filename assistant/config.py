"""Settings: the one place environment variables and `.env` are read."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "reconnect"


def _env(name: str, *aliases: str) -> AliasChoices:
    return AliasChoices(name, *aliases)


class Settings(BaseSettings):
    """Everything configurable, from RECONNECT_* variables (and a few standard names)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # Corpus and chunking
    corpus_dir: Path = Field(
        default=PROJECT_ROOT / "corpus", validation_alias=_env("RECONNECT_CORPUS_DIR")
    )
    chunk_tokens: int = Field(
        default=160, ge=32, le=256, validation_alias=_env("RECONNECT_CHUNK_TOKENS")
    )
    chunk_overlap_sentences: int = Field(
        default=1, ge=0, le=3, validation_alias=_env("RECONNECT_CHUNK_OVERLAP_SENTENCES")
    )

    # Embeddings
    embedding_provider: Literal["local", "openai"] = Field(
        default="local", validation_alias=_env("RECONNECT_EMBEDDING_PROVIDER")
    )
    openai_embedding_model: str = Field(
        default="text-embedding-3-small", validation_alias=_env("RECONNECT_OPENAI_EMBEDDING_MODEL")
    )

    # Vector store
    data_dir: Path = Field(
        default_factory=_default_data_dir, validation_alias=_env("RECONNECT_DATA_DIR")
    )
    chroma_host: str | None = Field(default=None, validation_alias=_env("CHROMA_HOST"))
    chroma_port: int = Field(default=8000, validation_alias=_env("CHROMA_PORT"))
    chroma_ssl: bool = Field(default=False, validation_alias=_env("CHROMA_SSL"))
    chroma_collection: str = Field(
        default="reconnect", validation_alias=_env("RECONNECT_COLLECTION")
    )

    # Retrieval
    top_k: int = Field(default=4, ge=1, le=20, validation_alias=_env("RECONNECT_TOP_K"))
    max_query_chars: int = Field(
        default=4000, ge=200, validation_alias=_env("RECONNECT_MAX_QUERY_CHARS")
    )

    # LLM (optional): any OpenAI-compatible endpoint
    openai_api_key: SecretStr | None = Field(default=None, validation_alias=_env("OPENAI_API_KEY"))
    openai_base_url: str | None = Field(default=None, validation_alias=_env("OPENAI_BASE_URL"))
    llm_model: str = Field(default="gpt-4o-mini", validation_alias=_env("RECONNECT_LLM_MODEL"))
    # Per request, and between streamed chunks; the client retries a timeout too, so a hung
    # endpoint costs about timeout x (retries + 1) before the offline reply is given.
    llm_timeout: float = Field(default=6.0, gt=0, validation_alias=_env("RECONNECT_LLM_TIMEOUT"))
    llm_max_retries: int = Field(
        default=2, ge=0, le=6, validation_alias=_env("RECONNECT_LLM_MAX_RETRIES")
    )
    llm_temperature: float = Field(
        default=0.3, ge=0, le=2, validation_alias=_env("RECONNECT_LLM_TEMPERATURE")
    )
    # The answer is asked for in under 160 words; this caps a model that loops or rambles.
    llm_max_tokens: int = Field(
        default=400, ge=32, le=4096, validation_alias=_env("RECONNECT_LLM_MAX_TOKENS")
    )
    # A whole LLM turn (condense, answer, check) must be done by this many seconds; past
    # it the offline answer is given, with a notice.
    llm_deadline: float = Field(
        default=20.0, gt=0, le=600, validation_alias=_env("RECONNECT_LLM_DEADLINE")
    )

    # Safety and privacy
    locale: str = Field(default="US", validation_alias=_env("RECONNECT_LOCALE"))
    feedback_db: Path | None = Field(default=None, validation_alias=_env("RECONNECT_FEEDBACK_DB"))

    # Triage (issue 3): the optional LLM second opinion may only raise a route
    triage_llm: bool = Field(default=True, validation_alias=_env("RECONNECT_TRIAGE_LLM"))
    triage_llm_timeout: float = Field(
        default=2.0, gt=0, le=30, validation_alias=_env("RECONNECT_TRIAGE_LLM_TIMEOUT")
    )

    @field_validator("locale")
    @classmethod
    def _upper_locale(cls, v: str) -> str:
        return v.strip().upper() or "US"

    @field_validator("chroma_host", "openai_base_url")
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return v.strip() or None if isinstance(v, str) else v

    @property
    def chroma_mode(self) -> str:
        return "server" if self.chroma_host else "embedded"

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def feedback_path(self) -> Path:
        return self.feedback_db or (self.data_dir / "feedback.sqlite3")

    @property
    def llm_enabled(self) -> bool:
        """An LLM is used when a key or a base URL (e.g. a local server) is configured."""
        return bool(self.openai_base_url or self.openai_api_key)

    def masked(self) -> dict[str, str]:
        """Settings in effect for display: secrets masked, never printed."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                secret = value.get_secret_value()
                out[name] = "(set, hidden)" if secret else "(empty)"
            elif value is None:
                out[name] = "(not set)"
            else:
                out[name] = str(value)
        return out


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides (tests use these)."""
    return Settings(**overrides)  # type: ignore[arg-type]


__all__ = ["Settings", "get_settings"]

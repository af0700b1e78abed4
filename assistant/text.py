"""Clean what a person typed before anything else reads it."""

from __future__ import annotations

import re
import unicodedata

from .errors import QueryError

# Format characters that hide or reorder text (bidi overrides, zero-width space, BOM).
# ZWJ/ZWNJ stay: they join emoji and some scripts and are harmless.
_KEEP_FORMAT = {"\u200c", "\u200d"}
_HSPACE = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def _keep(ch: str) -> bool:
    if ch == "\n":
        return True
    cat = unicodedata.category(ch)
    if cat in ("Cc", "Cs"):  # control characters (NUL included) and lone surrogates
        return ch == "\t"
    if cat == "Cf":
        return ch in _KEEP_FORMAT
    return True


def clean_user_text(raw: object, max_chars: int) -> tuple[str, str | None]:
    """Return the message cleaned and cut to `max_chars`, and a notice if it was cut.

    Control characters, lone surrogates and invisible format characters go; runs of
    white space become one space (line breaks are kept, at most one blank line).
    Raises QueryError when nothing readable is left.
    """
    if raw is None:
        raise QueryError("Please type a message.")
    if isinstance(raw, bytes | bytearray):
        raw = bytes(raw).decode("utf-8", errors="replace")
    text = unicodedata.normalize("NFC", str(raw).replace("\r\n", "\n").replace("\r", "\n"))
    text = "".join(ch for ch in text if _keep(ch))
    text = _HSPACE.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _BLANK_LINES.sub("\n\n", text).strip()
    if not text:
        raise QueryError("Please type a message: this one has no readable text.")

    notice = None
    if max_chars > 0 and len(text) > max_chars:
        cut = text[:max_chars]
        # Prefer ending at a word boundary so the last word is not half a word.
        space = max(cut.rfind(" "), cut.rfind("\n"))
        if space >= max_chars * 0.8:
            cut = cut[:space]
        text = cut.rstrip()
        notice = (
            f"Your message was long, so only its first {len(text):,} characters were read."
        )
    return text, notice


__all__ = ["clean_user_text"]

"""Clean what a person typed before anything else reads it."""

from __future__ import annotations

import re
import unicodedata

from .errors import QueryError

# Format characters that hide or reorder text (bidi overrides, zero-width space, BOM).
# ZWJ/ZWNJ stay: they join emoji and some scripts and are harmless.
_KEEP_FORMAT = {"\u200c", "\u200d"}
_HSPACE = re.compile(r"[^\S\n]+")


def _sentence_starters() -> str:
    """A character class body: capitals and caseless letters of the world's scripts."""
    ranges: list[tuple[int, int]] = []
    for code in range(0x80, 0x3000):  # alphabets; the big CJK blocks are added whole below
        if unicodedata.category(chr(code)) in ("Lu", "Lt", "Lo"):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    ranges += [(0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3)]
    return "".join(re.escape(chr(a)) + (f"-{re.escape(chr(b))}" if b > a else "")
                   for a, b in ranges)


# The one sentence boundary, for the article and for answers alike: end punctuation, then
# space and a capital (of any script), a digit, a quote or emphasis; a lower-case word
# after "e.g. " does not start a sentence. CJK full stops need no space after them.
SENTENCE_END = re.compile(
    r"(?<=[.!?…])[\"”’)]*\s+(?=[\"“‘(*A-Z0-9" + _sentence_starters() + r"])"
    r"|(?<=[。！？])[\"”’)」』]*\s*(?=\S)"
)
# A citation marker as the prompt asks for it: [2], [1, 3], [1; 2].
CITE_MARKER = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")
# A quoted span long enough to be a quotation rather than a word in quote marks.
QUOTED = re.compile(r"[\"“]([^\"“”]{12,}?)[\"”]")
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


__all__ = ["CITE_MARKER", "QUOTED", "SENTENCE_END", "clean_user_text"]

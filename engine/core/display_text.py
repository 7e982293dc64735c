"""User text (names, tags, notes, column names) made safe to show next to other text.

Bidirectional control characters let a name rewrite how the text around it reads: a right-to-
left override (U+202E) shows the tag "exe.txt" written backwards as "txt.exe". Shown here, each
control becomes a visible marker ("⟨U+202E⟩") and a string holding right-to-left letters is
isolated (FSI … PDI), so real Arabic or Hebrew reads as written without reordering what is
around it. Plain left-to-right text comes back unchanged. Pure: no Streamlit, no HTML.
"""

from __future__ import annotations

import re
import unicodedata

# Embeddings and overrides (LRE RLE PDF LRO RLO), isolates (LRI RLI FSI PDI), the implicit
# marks (LRM RLM) and the Arabic letter mark.
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
_CONTROL = re.compile(f"[{BIDI_CONTROLS}]")
FIRST_STRONG_ISOLATE = "\u2068"
POP_DIRECTIONAL_ISOLATE = "\u2069"
# Bidi classes that can move neighbouring characters: right-to-left letters, Arabic digits.
_RIGHT_TO_LEFT = frozenset({"R", "AL", "AN"})


def _marker(match: re.Match[str]) -> str:
    return f"⟨U+{ord(match.group()):04X}⟩"


def display_text(text: object) -> str:
    """`text` as it may be shown: bidi controls visible, right-to-left text isolated."""
    shown = _CONTROL.sub(_marker, str(text))
    if shown.isascii():  # the common case, and ASCII holds no right-to-left letter
        return shown
    if any(unicodedata.bidirectional(ch) in _RIGHT_TO_LEFT for ch in shown):
        return FIRST_STRONG_ISOLATE + shown + POP_DIRECTIONAL_ISOLATE
    return shown

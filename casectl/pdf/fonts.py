"""The fonts names are set in, and turning a string into runs of one font each.

No single TrueType font covers Latin, Cyrillic, Arabic and Chinese, so each
character goes to the first font that has a glyph for it (Noto Sans, then
Noto Sans Arabic and Hebrew, then Noto Sans SC), all shipped by PyPI packages
and embedded (subset) in the PDF. Arabic is shaped into its joined forms and
right-to-left text is put in visual order before drawing, because reportlab
draws glyphs left to right as given; text extractors read such runs back
right to left, so the logical string comes back out (Arabic as presentation
forms, which NFKC normalisation maps to the plain letters).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from importlib import resources
from pathlib import Path

SANS = "CasectlSans"
# Static labels (headings, column names) are ASCII: the standard bold face
# needs no embedding and gives the page a visible hierarchy.
BOLD = "Helvetica-Bold"
# Fonts whose variable default instance is Thin (reportlab draws that instance).
THIN = frozenset({"CasectlHebrew", "CasectlCJK"})

# (font name, package, file name pattern inside the package)
FAMILIES = (
    (SANS, "fontpkg_noto_sans", "NotoSans[[]*.ttf"),
    ("CasectlArabic", "justmytype_intl_rtl", "NotoSansArabic[[]*.ttf"),
    ("CasectlHebrew", "justmytype_intl_rtl", "NotoSansHebrew[[]*.ttf"),
    ("CasectlCJK", "justmytype_intl_cjk", "NotoSansSC[[]*.ttf"),
)

ELLIPSIS = "…"


class FontMissing(RuntimeError):
    pass


def _font_file(package: str, pattern: str) -> Path:
    try:
        root = Path(str(resources.files(package)))
    except ModuleNotFoundError:
        raise FontMissing(f"the font package '{package}' is not installed; reinstall casectl") from None
    found = sorted(root.rglob(pattern))
    if not found:
        raise FontMissing(f"no font matching {pattern} in package '{package}'; reinstall casectl")
    return found[0]


@functools.cache
def register() -> tuple[tuple[str, frozenset], ...]:
    """Register the fonts with reportlab once; returns (name, code points) in fallback order."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    out = []
    for name, package, pattern in FAMILIES:
        font = TTFont(name, str(_font_file(package, pattern)))
        pdfmetrics.registerFont(font)
        out.append((name, frozenset(font.face.charToGlyph)))
    return tuple(out)


_RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")
_ARABIC = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff]")


def has_rtl(text: str) -> bool:
    return _RTL.search(text) is not None


def visual(text: str) -> str:
    """Arabic joined into its contextual forms, right-to-left runs in visual order."""
    if text.isascii() or not has_rtl(text):
        return text
    from bidi import get_display

    if _ARABIC.search(text):
        import arabic_reshaper

        text = arabic_reshaper.reshape(text)
    return get_display(text)


def _neutral(ch: str) -> bool:
    return not unicodedata.category(ch).startswith("L")


_first_font: dict[int, str | None] = {}
_UNSET = object()


def runs(text: str) -> list[tuple[str, str]]:
    """`text` as (font, piece) runs in drawing order. Characters no font has become '?'."""
    if text.isascii():
        return [(SANS, text)] if text else []
    fonts = register()
    cmaps = dict(fonts)
    out: list[list] = []
    for ch in visual(unicodedata.normalize("NFC", text)):
        cp = ord(ch)
        current = out[-1][0] if out else None
        if current is not None and _neutral(ch) and cp in cmaps[current]:
            out[-1][1] += ch
            continue
        name = _first_font.get(cp, _UNSET)
        if name is _UNSET:
            name = _first_font[cp] = next((n for n, cps in fonts if cp in cps), None)
        if name is None:
            name, ch = (current or SANS), "?"
        if name == current:
            out[-1][1] += ch
        else:
            out.append([name, ch])
    return [(n, s) for n, s in out]


def width(text: str, size: float) -> float:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    if text.isascii():
        return stringWidth(text, SANS, size)
    return sum(stringWidth(s, n, size) for n, s in runs(text))


def fit(text: str, max_width: float, size: float) -> str:
    """`text` cut (with an ellipsis) to fit `max_width` points at `size`."""
    if not text or width(text, size) <= max_width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if width(text[:mid] + ELLIPSIS, size) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + ELLIPSIS

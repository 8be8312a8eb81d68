"""Lay out a document as fax pages and write them as the TIFF spandsp sends.

A :class:`Document` is a title and a list of blocks (headings, paragraphs, label/value
rows) in Chinese and English. :func:`render_pages` breaks them into A4 pages at fax fine
resolution (1728 × 2286 pixels, 204 × 196 dpi, 1 bit a pixel) with the company header,
the document's title, the date and "page i of n" on every page, drawn with the WenQuanYi
Zen Hei font (Debian ``fonts-wqy-zenhei``). :func:`write_tiff` saves them as one Group 4
TIFF with the resolution tags set: without them spandsp takes a page as standard
resolution and the far end prints it twice as tall, so :func:`check_tiff` refuses or fixes
such a file before it is sent. :func:`preview_png` is what the admin shows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Final

from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger("appliance.fax")

WIDTH: Final = 1728  # T.4 A4 line: 215 mm at 8.04 pixels/mm
FINE_HEIGHT: Final = 2286  # A4 length at 7.7 lines/mm
FINE_DPI: Final = (204, 196)
STANDARD_DPI: Final = (204, 98)
X_RESOLUTION: Final = 282  # TIFF tags
Y_RESOLUTION: Final = 283
MARGIN_X: Final = 110
MARGIN_TOP: Final = 90
MARGIN_BOTTOM: Final = 110

FONT_PATHS: Final = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
DEFAULT_COMPANY: Final = ("示范人寿保险股份有限公司", "Demo Life Insurance Co., Ltd.")

# Sizes in pixels at ~200 dpi: 30 px is about 11 pt, comfortable on a fax.
BODY_PX: Final = 30
HEADING_PX: Final = 36
TITLE_PX: Final = 46
SMALL_PX: Final = 24
LINE_GAP: Final = 1.45  # line height as a multiple of the font size


class FaxDocumentError(ValueError):
    """A page or TIFF that cannot be faxed as it is."""


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Row:
    """A label and its value on one line (the value wraps under itself)."""

    label: str
    value: str


@dataclass(frozen=True)
class Blank:
    """A form field: the label and a ruled line to write on."""

    label: str


Block = Heading | Paragraph | Row | Blank


@dataclass
class Document:
    kind: str  # policy_summary, rates, claim_form, procedures
    title: str  # "保单摘要 Policy summary"
    blocks: list[Block] = field(default_factory=list)


@lru_cache(maxsize=16)
def font(size: int) -> ImageFont.FreeTypeFont:
    for path in FONT_PATHS:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    raise FaxDocumentError(f"no CJK font found (looked for {', '.join(FONT_PATHS)}); "
                           "install the Debian package fonts-wqy-zenhei")


def wrap(text: str, size: int, width: int) -> list[str]:
    """Break ``text`` into lines no wider than ``width`` pixels: Chinese may break between
    any two characters, English only at spaces (a word longer than a line is cut)."""
    f = font(size)
    lines: list[str] = []
    for para in text.split("\n"):
        line = ""
        for token in _tokens(para):
            candidate = line + token
            if f.getlength(candidate) <= width or not line.strip():
                if f.getlength(candidate) > width:  # one token wider than the line
                    lines.extend(_cut(candidate, f, width))
                    line = ""
                    continue
                line = candidate
            else:
                lines.append(line.rstrip())
                line = token.lstrip()
        lines.append(line.rstrip())
    return lines


def _tokens(text: str) -> Iterator[str]:
    word = ""
    for ch in text:
        if ch.isascii() and not ch.isspace():
            word += ch
            continue
        if word:
            yield word
            word = ""
        yield ch
    if word:
        yield word


def _cut(text: str, f: ImageFont.FreeTypeFont, width: int) -> list[str]:
    out, line = [], ""
    for ch in text:
        if f.getlength(line + ch) > width and line:
            out.append(line)
            line = ""
        line += ch
    return [*out, line] if line else out


@dataclass(frozen=True)
class _Line:
    text: str
    size: int
    x: int  # offset from the left margin
    ruled: bool = False  # a form field's writing line follows the text


def _layout(doc: Document) -> list[_Line]:
    body_w = WIDTH - 2 * MARGIN_X
    label_w = 330
    out: list[_Line] = []
    for block in doc.blocks:
        if isinstance(block, Heading):
            out.append(_Line("", BODY_PX // 2, 0))
            out.extend(_Line(t, HEADING_PX, 0) for t in wrap(block.text, HEADING_PX, body_w))
        elif isinstance(block, Paragraph):
            out.extend(_Line(t, BODY_PX, 0) for t in wrap(block.text, BODY_PX, body_w))
        elif isinstance(block, Row):
            values = wrap(block.value, BODY_PX, body_w - label_w)
            labels = wrap(block.label, BODY_PX, label_w - 20)
            for i in range(max(len(values), len(labels))):
                label = labels[i] if i < len(labels) else ""
                value = values[i] if i < len(values) else ""
                # Label and value share a line: the value is placed after a tab stop.
                out.append(_Line(f"{label}\t{value}", BODY_PX, 0))
        else:
            out.append(_Line(block.label, BODY_PX, 0, ruled=True))
            out.append(_Line("", BODY_PX // 2, 0))
    return out


def _line_height(size: int) -> int:
    return round(size * LINE_GAP)


def _header_height() -> int:
    return _line_height(SMALL_PX) * 2 + _line_height(TITLE_PX) + 30


def _paginate(lines: Sequence[_Line]) -> list[list[_Line]]:
    room = FINE_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM - _header_height()
    pages: list[list[_Line]] = [[]]
    used = 0
    for line in lines:
        h = _line_height(line.size)
        if used + h > room and pages[-1]:
            pages.append([])
            used = 0
            if not line.text:  # no spacer at the top of a page
                continue
        pages[-1].append(line)
        used += h
    return pages


def render_pages(doc: Document, *, on: date, company: tuple[str, str] = DEFAULT_COMPANY,
                 ) -> list[Image.Image]:
    """The document as fax pages: mode ``1``, 1728 px wide, A4 at fine resolution."""
    pages = _paginate(_layout(doc))
    images = []
    for number, lines in enumerate(pages, start=1):
        img = Image.new("1", (WIDTH, FINE_HEIGHT), 1)
        draw = ImageDraw.Draw(img)
        y = _draw_header(draw, doc, company, on)
        for line in lines:
            y = _draw_line(draw, line, y)
        footer = f"第 {number} 页 / 共 {len(pages)} 页    Page {number} of {len(pages)}"
        f = font(SMALL_PX)
        draw.text(((WIDTH - f.getlength(footer)) / 2, FINE_HEIGHT - MARGIN_BOTTOM + 30),
                  footer, font=f, fill=0)
        img.info["dpi"] = FINE_DPI
        images.append(img)
    return images


def _draw_header(draw: ImageDraw.ImageDraw, doc: Document, company: tuple[str, str],
                 on: date) -> int:
    small = font(SMALL_PX)
    y = MARGIN_TOP
    draw.text((MARGIN_X, y), company[0], font=small, fill=0)
    stamp = f"{on:%Y年%m月%d日}  {on.isoformat()}"
    draw.text((WIDTH - MARGIN_X - small.getlength(stamp), y), stamp, font=small, fill=0)
    y += _line_height(SMALL_PX)
    draw.text((MARGIN_X, y), company[1], font=small, fill=0)
    y += _line_height(SMALL_PX)
    draw.text((MARGIN_X, y), doc.title, font=font(TITLE_PX), fill=0)
    y += _line_height(TITLE_PX) + 10
    draw.rectangle((MARGIN_X, y, WIDTH - MARGIN_X, y + 3), fill=0)
    return y + 20


def _draw_line(draw: ImageDraw.ImageDraw, line: _Line, y: int) -> int:
    f = font(line.size)
    x = MARGIN_X + line.x
    if "\t" in line.text:
        label, value = line.text.split("\t", 1)
        draw.text((x, y), label, font=f, fill=0)
        draw.text((x + 330, y), value, font=f, fill=0)
    elif line.text:
        draw.text((x, y), line.text, font=f, fill=0)
    if line.ruled:
        start = x + int(f.getlength(line.text)) + 20
        base = y + line.size + 4
        draw.rectangle((start, base, WIDTH - MARGIN_X, base + 1), fill=0)
    return y + _line_height(line.size)


def write_tiff(pages: Sequence[Image.Image], path: Path) -> Path:
    """Save the pages as one multi-page Group 4 TIFF at fine resolution."""
    if not pages:
        raise FaxDocumentError(f"{path}: a fax needs at least one page")
    for i, page in enumerate(pages, start=1):
        _check_page(page, f"page {i}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    pages[0].save(tmp, format="TIFF", compression="group4", dpi=FINE_DPI, save_all=True,
                  append_images=list(pages[1:]))
    tmp.replace(path)
    return path


def _check_page(page: Image.Image, what: str) -> None:
    if page.mode != "1":
        raise FaxDocumentError(f"{what}: mode {page.mode!r}; a fax page must be mode '1'")
    if page.width != WIDTH:
        raise FaxDocumentError(f"{what}: {page.width} px wide; a fax page must be {WIDTH}")


def read_pages(path: Path) -> list[Image.Image]:
    """Every page of a TIFF, loaded (e.g. a received fax, for comparison or preview)."""
    with Image.open(path) as tiff:
        pages = []
        for i in range(getattr(tiff, "n_frames", 1)):
            tiff.seek(i)
            page = tiff.copy()
            # Pillow reports (1, 1) for a page without resolution tags: read the tags.
            tags = getattr(tiff, "tag_v2", {})
            x, y = tags.get(X_RESOLUTION), tags.get(Y_RESOLUTION)
            page.info["dpi"] = (round(float(x)), round(float(y))) if x and y else None
            pages.append(page)
    return pages


def check_tiff(path: Path, *, fix_to: Path | None = None) -> Path:
    """The TIFF to hand spandsp for ``path``.

    A page in the wrong mode or width is refused. A TIFF without resolution tags would be
    sent as standard resolution (a fine page arrives twice as tall): with ``fix_to`` the
    pages are rewritten there at the resolution their height implies (taller than 1500
    lines is fine, A4 standard is 1143) and that path is returned; without, it is refused.
    """
    try:
        pages = read_pages(path)
    except (OSError, SyntaxError) as exc:
        raise FaxDocumentError(f"{path}: not a readable TIFF ({exc})") from exc
    missing = []
    for i, page in enumerate(pages, start=1):
        _check_page(page, f"{path} page {i}")
        dpi = page.info.get("dpi")
        if not dpi:
            missing.append(i)
        elif dpi not in (FINE_DPI, STANDARD_DPI):
            raise FaxDocumentError(f"{path} page {i}: {dpi[0]}×{dpi[1]} dpi; a fax page is "
                                   "204×196 (fine) or 204×98 (standard)")
    if not missing:
        return path
    if fix_to is None:
        raise FaxDocumentError(
            f"{path}: page(s) {', '.join(map(str, missing))} have no resolution (dpi) tags; "
            f"spandsp would send them as standard resolution, twice as tall as drawn")
    dpi = FINE_DPI if pages[0].height > 1500 else STANDARD_DPI
    log.warning("%s has no resolution tags; sending a copy at %s dpi (%s)", path, dpi, fix_to)
    fix_to.parent.mkdir(parents=True, exist_ok=True)
    pages[0].save(fix_to, format="TIFF", compression="group4", dpi=dpi, save_all=True,
                  append_images=pages[1:])
    return fix_to


def preview_png(path: Path, out: Path, *, page: int = 1, scale: float = 0.5) -> Path:
    """A PNG of one page of a fax TIFF, scaled for a screen, drawn with square pixels
    (fine pages are 204 × 196 dpi, close enough; standard pages are doubled in height)."""
    pages = read_pages(path)
    if not 1 <= page <= len(pages):
        raise FaxDocumentError(f"{path}: page {page} asked for; it has {len(pages)}")
    img = pages[page - 1]
    dpi = img.info.get("dpi") or FINE_DPI
    stretch = float(dpi[0]) / float(dpi[1])
    size = (round(img.width * scale), round(img.height * scale * stretch))
    img.convert("L").resize(size, Image.Resampling.LANCZOS).save(out, format="PNG")
    return out

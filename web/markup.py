"""The simple markup of knowledge-base articles, rendered to HTML that cannot carry script.

Everything the author typed is escaped first; only then are the few marks turned into
tags this module writes itself: ``# `` and ``## `` headings, ``- `` list items, ``1. ``
numbered items, ``**bold**``, and ``[text](https://…)`` links (http and https only, opened
in a new tab). A blank line ends a paragraph; a single line break stays a line break.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_LINK = re.compile(r"\[([^\]\n]{1,200})\]\((https?://[^\s)]{1,500})\)")
_NUMBERED = re.compile(r"^\d{1,3}[.、]\s+")


def _inline(text: str) -> str:
    """One line: escaped, then bold and links (on the escaped text, so nothing the author
    typed becomes a tag or an attribute)."""
    html = str(escape(text))
    html = _BOLD.sub(r"<strong>\1</strong>", html)
    return _LINK.sub(r'<a href="\2" rel="noopener noreferrer" target="_blank">\1</a>', html)


def render(text: str) -> Markup:
    out: list[str] = []
    para: list[str] = []
    items: list[str] = []
    kind = ""  # the open list: "ul", "ol" or ""

    def close() -> None:
        nonlocal kind
        if para:
            out.append("<p>" + "<br>".join(para) + "</p>")
            para.clear()
        if items:
            out.append(f"<{kind}>" + "".join(f"<li>{i}</li>" for i in items) + f"</{kind}>")
            items.clear()
        kind = ""

    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            close()
        elif line.startswith("## ") or line.startswith("# "):
            close()
            level = 4 if line.startswith("## ") else 3
            out.append(f"<h{level}>{_inline(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith(("- ", "* ")) or _NUMBERED.match(line):
            this = "ol" if _NUMBERED.match(line) else "ul"
            if para or (kind and kind != this):
                close()
            kind = this
            items.append(_inline(_NUMBERED.sub("", line) if this == "ol" else line[2:]))
        else:
            if items:
                close()
            para.append(_inline(line))
    close()
    return Markup("\n".join(out))


def plain(text: str) -> str:
    """The article's text without marks, for excerpts in search results."""
    t = re.sub(r"^\s*(#+|[-*]|\d{1,3}[.、])\s+", "", text, flags=re.M)
    t = _LINK.sub(r"\1", _BOLD.sub(r"\1", t))
    return re.sub(r"\s+", " ", t).strip()

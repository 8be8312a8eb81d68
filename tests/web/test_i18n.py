"""Every string the web shows is in the Chinese catalog, and the compiled catalog the app
loads is the one compiled from it."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

WEB = Path(__file__).resolve().parents[2] / "web"
CATALOG = WEB / "translations" / "zh_Hans_CN" / "LC_MESSAGES"


def _source_messages() -> set[str]:
    keywords = {**DEFAULT_KEYWORDS, "N_": None}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(WEB), method_map=[("**.py", "python"), ("templates/**.html", "jinja2")],
            keywords=keywords):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_visible_string_has_a_chinese_translation() -> None:
    with open(CATALOG / "messages.po", "rb") as f:
        po = read_po(f)
    translated = {m.id: m.string for m in po if m.id and m.string and not m.fuzzy}
    source = _source_messages()
    assert len(source) > 200
    missing = sorted(source - set(translated))
    assert not missing, f"untranslated (run make translations, then translate): {missing}"
    for msgid, text in translated.items():
        # Same placeholders on both sides, or the page fails to format it.
        import re

        assert sorted(re.findall(r"%\(\w+\)[sd]", msgid)) == \
            sorted(re.findall(r"%\(\w+\)[sd]", str(text))), msgid


def test_the_compiled_catalog_is_the_one_in_the_po_file() -> None:
    with open(CATALOG / "messages.po", "rb") as f:
        po = {m.id: m.string for m in read_po(f) if m.id}
    with open(CATALOG / "messages.mo", "rb") as f:
        mo = {m.id: m.string for m in read_mo(f) if m.id}
    assert mo == po, "messages.mo is stale: run make translations"

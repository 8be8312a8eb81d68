"""Fax pages: size, resolution, several pages, the preview, and TIFFs spandsp would misread."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from appliance.fax import documents
from appliance.fax.render import (
    FINE_HEIGHT,
    WIDTH,
    Document,
    FaxDocumentError,
    Paragraph,
    check_tiff,
    preview_png,
    read_pages,
    render_pages,
    wrap,
    write_tiff,
)
from appliance.store.db import Store
from tests.fax.conftest import TODAY


def test_every_document_is_fine_a4_group4_with_header_and_page_numbers(
        book: Path, tmp_path: Path) -> None:
    with Store(book) as store:
        number = store.query("SELECT number FROM policies LIMIT 1")[0]["number"]
        docs = {
            "policy_summary": {"number": number},
            "rates": {"product_code": "TL20", "sum_insured": 300000, "age": 33, "sex": "F",
                      "term": 20, "payment_mode": "annual"},
            "claim_form": {"policy_number": number},
            "procedures": {"product_code": "CI30"},
        }
        for kind, params in docs.items():
            path = write_tiff(render_pages(documents.build(store, kind, params), on=TODAY),
                              tmp_path / f"{kind}.tiff")
            with Image.open(path) as img:
                assert (img.mode, img.size) == ("1", (WIDTH, FINE_HEIGHT)), kind
                assert img.info["compression"] == "group4"
                assert img.info["dpi"] == (204, 196)
            page = np.array(read_pages(path)[0])
            # Ink in the header band, the body and the page-number footer; white margins.
            assert (~page[:300]).any() and (~page[400:1000]).any() and (~page[-110:]).any()
            assert page[:, :100].all() and page[:, -100:].all()


def test_rates_document_shows_the_quote_for_the_callers_parameters(book: Path) -> None:
    with Store(book) as store:
        doc = documents.rates(store, "TL20", 500000, age=35, sex="M", term=20,
                              payment_mode="annual")
        with pytest.raises(ValueError, match="age 80 is outside"):
            documents.rates(store, "TL20", 500000, age=80, sex="M", term=20,
                            payment_mode="annual")
    texts = [getattr(b, "value", "") for b in doc.blocks]
    # 500 000 / 1000 × 1.6875 (35-year-old man, 20 years, annual) = 843.75
    assert "¥843.75 元" in texts


def test_a_long_document_runs_onto_numbered_pages(tmp_path: Path) -> None:
    doc = Document("procedures", "测试 Test")
    doc.blocks = [Paragraph(f"第{i}段 paragraph {i} " + "保险" * 40) for i in range(60)]
    pages = render_pages(doc, on=TODAY)
    assert len(pages) >= 3
    path = write_tiff(pages, tmp_path / "long.tiff")
    assert len(read_pages(path)) == len(pages)
    png = preview_png(path, tmp_path / "p2.png", page=2)
    with Image.open(png) as img:
        # Fine pages are 204 dpi across and 196 down: square pixels make them a bit taller.
        assert img.format == "PNG" and img.size == (WIDTH // 2, round(FINE_HEIGHT / 2 * 204 / 196))
    with pytest.raises(FaxDocumentError, match="page 9 asked for"):
        preview_png(path, tmp_path / "p9.png", page=9)


def test_wrap_breaks_chinese_anywhere_and_english_at_spaces() -> None:
    lines = wrap("保险" * 50 + " the policy contract prevails", 30, 600)
    assert len(lines) > 3 and all(line for line in lines)
    assert "prevails" in lines[-1] and not any(line.endswith("prev") for line in lines)


def _no_dpi_tiff(path: Path) -> Path:
    page = Image.new("1", (WIDTH, FINE_HEIGHT), 1)
    page.paste(0, (200, 200, 1500, 260))
    page.save(path, format="TIFF", compression="group4")  # no dpi given
    return path


def test_a_tiff_without_dpi_is_refused_or_fixed(tmp_path: Path) -> None:
    bare = _no_dpi_tiff(tmp_path / "bare.tiff")
    with pytest.raises(FaxDocumentError, match="no resolution"):
        check_tiff(bare)
    fixed = check_tiff(bare, fix_to=tmp_path / "fixed.tiff")
    with Image.open(fixed) as img:
        assert img.info["dpi"] == (204, 196)
    assert np.array_equal(np.array(read_pages(fixed)[0]), np.array(read_pages(bare)[0]))


def test_pages_spandsp_cannot_send_are_refused(tmp_path: Path) -> None:
    Image.new("1", (1700, 2200), 1).save(tmp_path / "narrow.tiff", dpi=(204, 196))
    with pytest.raises(FaxDocumentError, match="1700 px wide"):
        check_tiff(tmp_path / "narrow.tiff")
    Image.new("1", (WIDTH, 2200), 1).save(tmp_path / "300.tiff", dpi=(300, 300))
    with pytest.raises(FaxDocumentError, match="300×300 dpi"):
        check_tiff(tmp_path / "300.tiff", fix_to=tmp_path / "never.tiff")
    with pytest.raises(FaxDocumentError, match="mode 'L'"):
        write_tiff([Image.new("L", (WIDTH, 100), 255)], tmp_path / "grey.tiff")
    (tmp_path / "junk.tiff").write_bytes(b"not a tiff")
    with pytest.raises(FaxDocumentError, match="not a readable TIFF"):
        check_tiff(tmp_path / "junk.tiff")

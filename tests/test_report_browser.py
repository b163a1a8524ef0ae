"""The HTML report of two evaluated models, opened in a real headless Chromium: every plot has loaded (non-zero
naturalWidth) and a screenshot is kept in tests/artifacts/report.png. Chromium: scripts/install_browser.sh."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from rdistill.report import build_report  # noqa: E402
from support.browser import find_chromium, image_report, screenshot  # noqa: E402
from support.eval_runs import make_run_folder  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        message = "chromium is not installed: run scripts/install_browser.sh"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it; a missing browser there is a broken setup, not a skip
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    return build_report([make_run_folder(root)], root / "report").html


def test_every_plot_loads_in_a_real_browser(chromium, report_html):
    page = image_report(chromium, report_html)
    assert page["title"] == "rdistill evaluation report" and page["tables"] >= 5
    assert len(page["images"]) == 4
    for image in page["images"]:
        assert image["complete"] and image["naturalWidth"] > 100 and image["naturalHeight"] > 100, image


def test_a_broken_image_is_caught(chromium, report_html, tmp_path):
    """The check itself can fail: the same page with one plot's data cut short shows a zero-width image."""
    html = report_html.read_text()
    start = html.index("base64,") + len("base64,")
    broken = tmp_path / "broken.html"
    broken.write_text(html[:start] + "AAAA" + html[html.index('"', start):])
    widths = [image["naturalWidth"] for image in image_report(chromium, broken)["images"]]
    assert widths[0] == 0 and all(w > 0 for w in widths[1:])


def test_screenshot_is_saved_as_an_artifact(chromium, report_html):
    png = screenshot(chromium, report_html, ARTIFACTS / "report.png")
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 50_000  # a rendered page with plots, not a blank one

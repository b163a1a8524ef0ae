"""Open an HTML file in Debian's headless Chromium: which images loaded (naturalWidth), and a screenshot.

The check runs in a copy of the page with a small script added that, on the load event, writes every <img>'s
state into the DOM as JSON; `--dump-dom` then prints the DOM. The page itself is left untouched.
Chromium comes from `scripts/install_browser.sh` (apt-get install chromium).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]
_PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images].map(i => ({name: i.dataset.name || i.alt, complete: i.complete,
                                                 naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight}));
  const out = document.createElement("pre");
  out.id = "rdistill-image-check";
  out.textContent = JSON.stringify({images, title: document.title, tables: document.querySelectorAll("table").length});
  document.body.appendChild(out);
});
</script>"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(chromium: str, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="rdistill-chromium-")  # a fresh profile every time: no state leaks in
    try:
        return subprocess.run([chromium, *_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, "HOME": profile})
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def image_report(chromium: str, html_path: Path) -> dict:
    """{"images": [{name, complete, naturalWidth, naturalHeight}], "title", "tables"} as Chromium rendered it."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.html"
        probe.write_text(html_path.read_text(encoding="utf-8").replace("</body>", _PROBE + "\n</body>"),
                         encoding="utf-8")
        proc = _run(chromium, ["--virtual-time-budget=5000", "--dump-dom", probe.as_uri()])
    match = re.search(r'<pre id="rdistill-image-check">(.*?)</pre>', proc.stdout, re.S)
    if match is None:
        raise AssertionError(f"chromium rendered no image check (exit {proc.returncode}): {proc.stderr[-2000:]}")
    import html

    return json.loads(html.unescape(match.group(1)))


def screenshot(chromium: str, html_path: Path, out_png: Path, size: tuple[int, int] = (1200, 4000)) -> Path:
    out_png.parent.mkdir(parents=True, exist_ok=True)
    proc = _run(chromium, [f"--window-size={size[0]},{size[1]}", f"--screenshot={out_png}", html_path.as_uri()])
    if not out_png.exists():
        raise AssertionError(f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return out_png

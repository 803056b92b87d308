"""Open the HTML report in headless Chromium: the plots must render, offline."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium package (.ci/run installs it)"
)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]
# After load, write each image's decoded width into the DOM, where --dump-dom can read it.
PROBE = """<script>
window.addEventListener("load", () => {
  const widths = Array.from(document.images).map((image) => image.naturalWidth);
  document.body.setAttribute("data-widths", widths.join(","));
});
</script></body>"""


def chromium(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *FLAGS, *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def white_like(match: re.Match[str]) -> str:
    size = Image.open(io.BytesIO(base64.b64decode(match.group(1)))).size
    buffer = io.BytesIO()
    Image.new("RGB", size, "white").save(buffer, format="PNG")
    return f'src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}"'


def screenshot(page: Path, folder: Path) -> np.ndarray:
    target = folder / f"{page.stem}.png"
    chromium("--window-size=1200,1600", f"--screenshot={target}", page.as_uri(), cwd=folder)
    return np.asarray(Image.open(target).convert("L"))


def test_report_renders_its_plots_in_a_browser(evaluated, tmp_path):
    bundle = evaluated.runs["lightgbm"].version.bundle_path
    report = tmp_path / "report.html"
    shutil.copyfile(bundle / "report.html", report)
    html = report.read_text()
    # Self-contained: every image is inline, nothing is fetched.
    sources = re.findall(r'<img [^>]*src="([^"]{0,30})', html)
    assert len(sources) >= 6
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    assert "http://" not in html
    assert "https://" not in html

    pixels = screenshot(report, tmp_path)
    assert pixels.shape == (1600, 1200)
    # Control: the same page with every plot replaced by a white image of the same size, so
    # the layout is identical. The rendered plots must ink many more pixels than that.
    control_page = tmp_path / "control.html"
    control_page.write_text(re.sub(r'src="data:image/png;base64,([^"]*)"', white_like, html))
    control = screenshot(control_page, tmp_path)
    differs = np.abs(pixels.astype(int) - control.astype(int)) > 30
    assert differs.mean() > 0.03
    assert (pixels < 250).mean() > (control < 250).mean() + 0.03
    assert len(np.unique(pixels)) > 50  # anti-aliased curves and fills, not a blank page

    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("</body>", PROBE))
    dom = chromium("--virtual-time-budget=5000", "--dump-dom", probed.as_uri(), cwd=tmp_path)
    widths = re.search(r'data-widths="([0-9,]*)"', dom.stdout)
    assert widths is not None, dom.stdout[-500:]
    decoded = [int(width) for width in widths.group(1).split(",")]
    assert len(decoded) == len(sources)
    assert all(width > 100 for width in decoded)

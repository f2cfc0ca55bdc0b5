"""report.html: one self-contained page (plots embedded, escaped text), checked in headless Chromium.

The browser checks need Debian's `chromium` (`.ci/run` installs it). Without it they skip, except
when the environment variable CI is set: there they fail, so CI cannot pass without running them.
Chromium runs with the phone's viewport (390 x 844 CSS px, an iPhone 12-14) and a desktop's
(1280 x 2400), each in a fresh profile.
"""

import base64
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_report import _results as run_results
from test_summary import FMNIST_CNN, HOUSE, _bench_row, _write_json, _write_run

from parity import html_report, summary
from parity.report import build_report, write_report

PHONE = (390, 844)
DESKTOP = (1280, 2400)
CHROMIUM_SECONDS = 90
CONSOLE_LINE = re.compile(r":CONSOLE[:(]")  # Chromium's log line of a page console message, any level
# A page holding the report in an iframe of the phone's viewport (headless Chromium's window is at least 500 px
# wide; an iframe's viewport is exactly its size), and a script that, once everything has loaded, writes what the
# report looks like to a script: the natural sizes of its decoded images, its table rows, its widths.
PROBE_PAGE = """<!DOCTYPE html>
<html><body style="margin:0">
<iframe id="report" src="{src}" style="border:0; width:{width}px; height:{height}px"></iframe>
<script>
addEventListener("load", () => {{
  const frame = document.getElementById("report").contentWindow;
  const page = frame.document;
  const probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify({{
    images: [...page.images].map(image => [image.naturalWidth, image.naturalHeight]),
    bodyRows: page.querySelectorAll("tbody tr").length,
    pageWidth: page.documentElement.scrollWidth,
    viewportWidth: frame.innerWidth,
    tableWidths: [...page.querySelectorAll(".table-wrap")].map(wrap => [wrap.clientWidth, wrap.scrollWidth]),
  }});
  document.body.append(probe);
}});
</script>
</body></html>
"""


# ---------------------------------------------------------------------------- the page itself


def _png(width=4, height=3, colour=(200, 30, 30)):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_text_is_escaped_images_embedded_and_tables_wrapped():
    markdown = ("# c9 <script>alert(1)</script> & \"quotes\"\n\n"
                "| Model | Path |\n|---|---|\n| <b>x</b> | /tmp/a&b |\n\n"
                "<img src=\"https://example.com/x.png\">\n\n![Curves](curves.png)\n")
    png = _png()
    page = html_report.render_html(markdown, {"curves.png": png})
    assert "<script" not in page and "<b>" not in page and "https://" not in page.split("<main>")[1].replace(
        "&lt;img src=&quot;https://example.com/x.png&quot;&gt;", "")
    assert "<title>c9 &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;</title>" in page
    assert "<h1>c9 &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;</h1>" in page
    assert "<td>&lt;b&gt;x&lt;/b&gt;</td>" in page and "<td>/tmp/a&amp;b</td>" in page
    assert f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}" alt="Curves"' in page
    assert '<div class="table-wrap">\n<table>' in page and "</table>\n</div>" in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "default-src 'none'; img-src data:" in page


def test_every_resource_is_inline():
    page = html_report.render_html("# t\n\n![a](a.png)\n\n![b](my%20b.png)\n", {"a.png": _png(), "my b.png": _png()})
    assert re.findall(r'src="([a-z]+):', page) == ["data", "data"]
    for external in ("<link", "<script", "@import", "url(", "@font-face"):
        assert external not in page


def test_only_long_cells_wrap():
    limit = html_report.LONG_CELL_CHARS
    page = html_report.render_html(f"| a | b |\n|---|---:|\n| {'x' * (limit + 1)} | {'y' * limit} |\n", {})
    assert f'<td class="long">{"x" * (limit + 1)}</td>' in page
    assert f'<td style="text-align:right">{"y" * limit}</td>' in page


def test_an_image_not_given_is_an_error_not_a_broken_page():
    with pytest.raises(ValueError, match=r"image 'forecast.png' but it was not given to embed; .*given: curves.png"):
        html_report.render_html("![f](forecast.png)\n", {"curves.png": _png()})


def test_run_report_html_is_the_markdown_with_curves_embedded(tmp_path):
    final = write_report(build_report(run_results()), tmp_path)
    page = (final / "report.html").read_text()
    curves = base64.b64encode((final / "curves.png").read_bytes()).decode()
    assert f'src="data:image/png;base64,{curves}"' in page
    assert "<h1>c1w2_fmnist_dnn" in page and "<h2>Results</h2>" in page and "<h2>Comparison</h2>" in page
    assert page.count("<tr>") == 3  # header, keras, lightning


# ---------------------------------------------------------------------------- in Chromium


def _chromium():
    """The chromium executable; skip without it, or fail when CI is set (CI must run these checks)."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        reason = "headless Chromium not installed (apt-get install -y chromium; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}, and CI is set: the HTML report must be checked in a browser in CI")
        pytest.skip(reason)
    return executable


def _browse(page, size, tmp_path, *args):
    """Open `page` in headless Chromium at `size`; (stdout, the page's console lines)."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
               "--disable-extensions", "--disable-background-networking", f"--user-data-dir={profile}",
               "--enable-logging=stderr", "--v=0", f"--window-size={size[0]},{size[1]}", *args, page.as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_SECONDS)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, [line for line in result.stderr.splitlines() if CONSOLE_LINE.search(line)]


def console_messages(page, tmp_path):
    """What `page` writes to the browser console at either size, taking a screenshot at each; [] for a clean page."""
    messages = []
    for size in (PHONE, DESKTOP):
        shot = tmp_path / f"{page.stem}-{size[0]}x{size[1]}.png"
        messages += _browse(page, size, tmp_path, f"--screenshot={shot}")[1]
    return messages


def _probe(page, size, tmp_path):
    """What the page, unchanged, in a viewport of `size`, looks like to a script after load (see PROBE_PAGE)."""
    probe = tmp_path / f"probe-{page.stem}.html"
    probe.write_text(PROBE_PAGE.format(src=page.as_uri(), width=size[0], height=size[1]))
    dom, console = _browse(probe, (max(size[0], 500), size[1]), tmp_path, "--dump-dom", "--allow-file-access-from-files")
    assert console == []
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert match, "the probe did not run after the load event"
    return json.loads(match.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The report.html of one run and summary.html of a small `parity report` (a table, both plots)."""
    root = tmp_path_factory.mktemp("html")
    run_page = write_report(build_report(run_results()), root / "run") / "report.html"
    _write_run(root / "runs", "c1w3_fmnist_cnn", "accuracy", *FMNIST_CNN, (2000.0, 1500.0))
    _write_run(root / "runs", "c1w1_house_price", "mae", *HOUSE, (3000.0, 1000.0))
    _write_json(root / "bench" / "bench.json", [
        _bench_row("c1w3_fmnist_cnn", "cpu", (1000, 950, 1040), (1700, 1650, 1760), ci95=(1.62, 1.79))])
    rows = summary.summarize([root / "runs", root / "bench"], warn=print)
    summary_files = summary.write_summary(rows, None, root / "summary" / "summary.md")
    alone = root / "alone"  # each page by itself, without the PNG files it was made from: self-contained or broken
    alone.mkdir()
    return {"run": Path(shutil.copy(run_page, alone / "report.html")),
            "summary": Path(shutil.copy(summary_files[1], alone / "summary.html")),
            "summary_rows": len(rows), "plots": [Image.open(path).size for path in summary_files[2:]]}


def _screenshot_is_a_page(path, size):
    """The screenshot has the viewport's size and shows content: not one flat colour."""
    with Image.open(path) as image:
        assert image.size == size
        grey = np.asarray(image.convert("L"), dtype=np.float64)
    assert grey.std() > 15  # a blank page is 0; text, tables and plots give 40-70
    assert (grey < 128).mean() > 0.01  # dark pixels (text, lines) on more than 1% of it


@pytest.mark.parametrize("name", ["run", "summary"])
def test_page_opens_without_console_messages_and_its_screenshots_show_content(pages, name, tmp_path):
    page = pages[name]
    assert console_messages(page, tmp_path) == []
    for size in (PHONE, DESKTOP):
        _screenshot_is_a_page(tmp_path / f"{page.stem}-{size[0]}x{size[1]}.png", size)


def test_run_report_shows_its_table_and_curves_and_fits_a_phone(pages, tmp_path):
    probe = _probe(pages["run"], PHONE, tmp_path)
    assert probe["bodyRows"] == 2  # keras, lightning
    assert probe["images"] == [[1100, 420]]  # curves.png: 11 x 4.2 inches at 100 dpi, decoded by the browser
    assert probe["pageWidth"] == probe["viewportWidth"] == PHONE[0]  # the page does not scroll sideways
    assert all(client <= PHONE[0] for client, _ in probe["tableWidths"])


def test_summary_shows_every_row_and_both_plots_and_scrolls_its_table_not_the_page(pages, tmp_path):
    probe = _probe(pages["summary"], PHONE, tmp_path)
    assert probe["bodyRows"] == pages["summary_rows"] == 2
    assert probe["images"] == [list(size) for size in pages["plots"]]
    assert len(probe["images"]) == 2 and all(width == 1100 for width, _ in probe["images"])
    assert probe["pageWidth"] == probe["viewportWidth"] == PHONE[0]
    (wrap_client, wrap_scroll), = probe["tableWidths"]
    assert wrap_client < PHONE[0] < wrap_scroll  # the 18-column table scrolls inside its wrapper


def test_a_planted_script_error_is_caught(pages, tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text(pages["run"].read_text().replace("</body>", "<script>undefinedFunction();</script>\n</body>"))
    messages = console_messages(broken, tmp_path)
    assert len(messages) == 2  # once per viewport: the policy blocks the script, and says so
    assert all("Content Security Policy" in message for message in messages)
    permissive = tmp_path / "permissive.html"
    permissive.write_text(broken.read_text().replace(html_report.CONTENT_SECURITY_POLICY, "script-src 'unsafe-inline'"))
    messages = console_messages(permissive, tmp_path)
    assert len(messages) == 2 and all("Uncaught ReferenceError: undefinedFunction is not defined" in message
                                      for message in messages)

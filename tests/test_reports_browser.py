"""The ``make tour`` reports draw every figure in a real browser, offline, without script errors.

Each report is built from the committed, executed notebook by the function ``make tour``
uses (``scripts/_report.py``; nothing is re-executed). Without a browser, its HTML is checked
to load nothing from the network and to hold one figure per plotly output; in headless
Chromium, every plotly output must become a drawn plot, and neither a script error nor a
console error (e.g. a resource that could not load) may occur. No network is needed: a
report that depends on a CDN fails here.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from plotly.offline import get_plotlyjs

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
INSTALL_HINT = "apt-get install chromium chromium-driver"
# Collects uncaught errors and rejected promises, installed before any page script runs.
# Capturing on window also sees elements (script, img, link) that failed to load.
ERROR_COLLECTOR = """
window.__reportErrors = [];
window.addEventListener('error', (event) => {
  const where = event.target && event.target !== window
    ? `failed to load <${event.target.tagName.toLowerCase()}> ${event.target.src || event.target.href || ''}`
    : `${event.message} (${event.filename}:${event.lineno})`;
  window.__reportErrors.push(where);
}, true);
window.addEventListener('unhandledrejection', (event) => {
  window.__reportErrors.push(`unhandled rejection: ${event.reason}`);
});
"""
# Per plotly output: its div got Plotly's class, a layout and a non-empty SVG.
DRAWN_FIGURES = """
return Array.from(document.querySelectorAll('.plotly-graph-div')).map((div) => {
  const svg = div.querySelector('svg.main-svg');
  const box = svg ? svg.getBoundingClientRect() : null;
  return {
    id: div.id,
    drawn: div.classList.contains('js-plotly-plot') && Boolean(div._fullLayout)
      && box !== null && box.width > 0 && box.height > 0,
  };
});
"""


def _load_report_module():
    spec = importlib.util.spec_from_file_location("_report", ROOT / "scripts" / "_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report = _load_report_module()


# A tag that makes the browser fetch from another host: src/href starting with http(s):// or //.
EXTERNAL_FETCH = re.compile(
    r"<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//"
)


@pytest.fixture(scope="module", params=NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def notebook(request: pytest.FixtureRequest) -> tuple[Path, nbformat.NotebookNode]:
    """A committed notebook, read once per module."""
    return request.param, nbformat.read(request.param, as_version=4)


def test_report_is_self_contained(notebook: tuple[Path, nbformat.NotebookNode]) -> None:
    path, nb = notebook
    expected = len(report.plotly_outputs(nb))
    assert expected > 0, f"{path.name} stores no plotly figure: execute it before committing"
    body = report.notebook_report(nb, path.stem)
    assert EXTERNAL_FETCH.findall(body) == []
    assert body.count('class="plotly-graph-div"') == expected
    assert body.count(get_plotlyjs()[:200]) == 1  # plotly.js embedded once
    assert "application/vnd.jupyter.widget-state+json" not in body


def test_notebook_report_rejects_a_path() -> None:
    with pytest.raises(TypeError, match="nbformat.read"):
        report.notebook_report(NOTEBOOKS[0], "report")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    """One headless Chromium for all reports, driven through Debian's chromedriver."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(f"Chromium not installed: {INSTALL_HINT}")
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium missing: pip install -e '.[dev]'"
    )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1024",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager does not run, so nothing is downloaded.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": ERROR_COLLECTOR})
    yield driver
    driver.quit()


def open_report(driver, page: Path, expected_figures: int, timeout: float = 60.0) -> dict:
    """Load ``page``, wait until ``expected_figures`` plots are drawn; return what was seen."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # drop messages of the previous page
    driver.get(page.as_uri())

    def all_drawn(drv) -> bool:
        figures = drv.execute_script(DRAWN_FIGURES)
        return len(figures) >= expected_figures and all(f["drawn"] for f in figures)

    try:
        WebDriverWait(driver, timeout, poll_frequency=0.25).until(all_drawn)
    except TimeoutException:
        pass  # the assertions below say what is missing
    return {
        "figures": driver.execute_script(DRAWN_FIGURES),
        "errors": driver.execute_script(
            "return window.__reportErrors || ['error collector missing'];"
        ),
        "console": [
            entry["message"]
            for entry in driver.get_log("browser")
            if entry["level"] in ("SEVERE", "ERROR")
        ],
    }


def test_report_draws_every_figure_without_errors(
    browser, notebook: tuple[Path, nbformat.NotebookNode], tmp_path: Path
) -> None:
    path, nb = notebook
    expected = len(report.plotly_outputs(nb))
    assert expected > 0, f"{path.name} stores no plotly figure: execute it before committing"
    page = report.write_report(nb, tmp_path / f"{path.stem}.html")

    seen = open_report(browser, page, expected)

    not_drawn = [figure["id"] for figure in seen["figures"] if not figure["drawn"]]
    assert len(seen["figures"]) == expected, (len(seen["figures"]), expected)
    assert not not_drawn, f"figures not drawn in {page.name}: {not_drawn}"
    assert not seen["errors"], f"script errors in {page.name}: {seen['errors']}"
    assert not seen["console"], f"console errors in {page.name}: {seen['console']}"

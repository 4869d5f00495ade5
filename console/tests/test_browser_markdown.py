"""The chat's Markdown renderer (marked + DOMPurify, console/static/console/markdown.js) in
headless Chromium, fed hostile answers of every kind a model might produce.

Whatever the input, the result holds only allowed tags, no event handler or style attribute,
links only to absolute http(s) targets with rel=noopener, nothing fetched, nothing run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from console.tests.test_browser import browser  # noqa: F401  # fixture

pytestmark = [pytest.mark.browser]

STATIC = Path(__file__).resolve().parents[1] / "static"
SCRIPTS = [
    STATIC / "vendor" / "marked" / "marked.umd.js",
    STATIC / "vendor" / "dompurify" / "purify.min.js",
    STATIC / "console" / "markdown.js",
]
ALLOWED_TAGS = {
    "A", "BLOCKQUOTE", "BR", "CODE", "DEL", "EM", "H3", "H4", "H5", "H6", "HR", "LI", "OL", "P",
    "PRE", "STRONG", "TABLE", "TBODY", "TD", "TH", "THEAD", "TR", "UL",
}  # fmt: skip

HOSTILE = [
    "<img src=x onerror=window.__pwned=1>",
    "<script>window.__pwned=2</script>",
    "<svg onload=window.__pwned=3></svg>",
    "<iframe src=javascript:window.__pwned=4></iframe>",
    '<a href="javascript:window.__pwned=5">raw link</a>',
    "[click](javascript:window.__pwned=6)",
    "[click](JaVaScRiPt:window.__pwned=7)",
    "[click]( javascript:window.__pwned=8 )",
    "[click](&#106;avascript:window.__pwned=9)",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](vbscript:msgbox)",
    "[click](//evil.example/x)",
    "[click](/relative/path)",
    "<javascript:window.__pwned=10>",
    "[ref][r]\n\n[r]: javascript:window.__pwned=11",
    "![pic](https://evil.example/beacon.png)",
    '![pic](x" onerror="window.__pwned=12)',
    "<div style='position:fixed;inset:0'>overlay</div>",
    "<form action=https://evil.example><input name=q></form>",
    "<details open ontoggle=window.__pwned=13>",
    "```\n</code></pre><img src=x onerror=window.__pwned=14>\n```",
    "`<img src=x onerror=window.__pwned=15>`",
    "**<img src=x onerror=window.__pwned=16>**",
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__pwned=17>",
    '[x](https://ok.example "title\\" onmouseover=\\"window.__pwned=18")',
    "| a | b |\n|---|---|\n| <img src=x onerror=window.__pwned=19> | [l](javascript:1) |",
]

INSPECT = """(text) => {
  const out = document.getElementById("out");
  out.replaceChildren(CortexMarkdown.render(text));
  const bad = [];
  for (const node of out.querySelectorAll("*")) {
    for (const attr of node.attributes) {
      if (/^on/i.test(attr.name) || attr.name === "style" || attr.name === "src") {
        bad.push(node.tagName + "[" + attr.name + "]");
      }
    }
  }
  return {
    tags: [...out.querySelectorAll("*")].map((n) => n.tagName),
    links: [...out.querySelectorAll("a")].map((a) => ({
      href: a.getAttribute("href"), rel: a.getAttribute("rel"), target: a.getAttribute("target"),
    })),
    bad,
    text: out.textContent,
  };
}"""


@pytest.fixture
def page(browser) -> Any:  # noqa: F811
    missing = [str(p) for p in SCRIPTS if not p.is_file()]
    if missing:
        pytest.fail(f"vendor files missing ({missing}): run `make vendor`")
    context = browser.new_context()
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: (errors.append("dialog"), dialog.dismiss()))
    page.set_content('<!doctype html><div id="out"></div>')
    for script in SCRIPTS:
        page.add_script_tag(path=str(script))
    page.requests = requests
    page.errors = errors
    yield page
    context.close()


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_markdown_renders_inert(page, text: str) -> None:
    result = page.evaluate(INSPECT, text)
    page.wait_for_timeout(50)  # give any handler that slipped through a chance to run
    assert set(result["tags"]) <= ALLOWED_TAGS, result["tags"]
    assert result["bad"] == []
    for link in result["links"]:
        assert link["href"] is None or link["href"].startswith(("http://", "https://")), link
        if link["href"]:
            assert link["rel"] == "noopener noreferrer nofollow"
            assert link["target"] == "_blank"
    assert page.evaluate("window.__pwned") is None
    assert page.errors == []
    assert [url for url in page.requests if not url.startswith(("about:", "data:"))] == []


def test_raw_html_is_shown_as_text(page) -> None:
    result = page.evaluate(INSPECT, "before <b>bold?</b> <img src=x onerror=alert(1)> after")
    assert result["tags"] == ["P"]
    assert result["text"].strip() == "before <b>bold?</b> <img src=x onerror=alert(1)> after"


def test_ordinary_markdown_renders(page) -> None:
    text = (
        "# Title\n\nSome **bold**, _em_, ~~gone~~ and `code`.\n\n"
        "1. one\n2. two\n\n> quoted\n\n"
        "```sh\ndf -h\n```\n\nSee https://example.com/a and [docs](http://example.com/d).\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\nline one\nline two"
    )
    result = page.evaluate(INSPECT, text)
    assert result["tags"] == [
        "H3", "P", "STRONG", "EM", "DEL", "CODE", "OL", "LI", "LI", "BLOCKQUOTE", "P", "PRE",
        "CODE", "P", "A", "A", "TABLE", "THEAD", "TR", "TH", "TH", "TBODY", "TR", "TD", "TD",
        "P", "BR",
    ]  # fmt: skip
    assert [link["href"] for link in result["links"]] == [
        "https://example.com/a",
        "http://example.com/d",
    ]
    code = page.evaluate("document.querySelector('pre code').className")
    assert code == "lang-sh"

"""report.html from report.md: one self-contained page a browser opens without a network, on a phone too.

The Markdown is rendered by markdown-it-py (CommonMark with tables) with raw HTML off, so every
text of the report (model titles, paths, reasons) is escaped, never markup. Images the Markdown
references by file name are embedded as base64 `data:` URIs; the CSS is inline; there is no
script, font or other resource, and a Content-Security-Policy forbids loading any (images only
from `data:`). Readable on a phone: the viewport meta, tables scroll sideways inside a wrapper
(the page itself does not), images at most the page's width. Table cells stay on one line
(numbers and intervals never break) except long texts (class `long`: over LONG_CELL_CHARS, such
as a recommendation), which wrap in a column of fixed width.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
DEFAULT_TITLE = "parity report"
LONG_CELL_CHARS = 60
STYLE = """
:root { color-scheme: light; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1f2328; background: #fff; }
main { max-width: 80rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.6rem; line-height: 1.25; overflow-wrap: anywhere; }
h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; padding-bottom: .25rem; }
p, li { overflow-wrap: anywhere; }
code { font: .9em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f6f8fa; padding: .1em .3em;
       border-radius: 4px; }
.table-wrap { overflow-x: auto; -webkit-overflow-scrolling: touch; margin: 1rem 0; border: 1px solid #d0d7de;
              border-radius: 6px; }
table { border-collapse: collapse; font-size: .9rem; width: max-content; }
th, td { border: 1px solid #d0d7de; padding: .35rem .6rem; vertical-align: top; white-space: nowrap; }
td.long { white-space: normal; width: 26rem; min-width: 26rem; }
th { background: #f6f8fa; white-space: nowrap; }
tr:nth-child(even) td { background: #fbfbfc; }
th:first-child, td:first-child { position: sticky; left: 0; background: #f6f8fa; }
img { display: block; max-width: 100%; height: auto; margin: 1rem 0; }
"""


def _parser() -> MarkdownIt:
    """CommonMark with tables, raw HTML off (escaped as text), tables wrapped for sideways scrolling."""
    from markdown_it import MarkdownIt  # here, so that importing parity.report and parity.summary stays cheap

    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    parser.add_render_rule("table_open", _table_open)
    parser.add_render_rule("table_close", _table_close)
    return parser


def _table_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return '<div class="table-wrap">\n' + self.renderToken(tokens, idx, options, env)


def _table_close(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return self.renderToken(tokens, idx, options, env) + "</div>\n"


def data_uri(name: str, content: bytes) -> str:
    """`content` as a base64 data URI of the image type of `name`'s suffix."""
    suffix = name[name.rfind("."):].lower() if "." in name else ""
    if suffix not in IMAGE_TYPES:
        raise ValueError(f"{name}: not an image type the report embeds ({', '.join(sorted(IMAGE_TYPES))})")
    return f"data:{IMAGE_TYPES[suffix]};base64,{base64.b64encode(content).decode('ascii')}"


def _embed_images(tokens: Sequence[Token], images: Mapping[str, bytes]) -> None:
    """Point every image token at its embedded data; an image the caller did not provide is an error."""
    for token in tokens:
        for child in token.children or ():
            if child.type != "image":
                continue
            name = unquote(str(child.attrGet("src")))
            if name not in images:
                raise ValueError(f"the Markdown shows image {name!r} but it was not given to embed; "
                                 f"pass its bytes in `images` (given: {', '.join(sorted(images)) or 'none'})")
            child.attrSet("src", data_uri(name, images[name]))


def _mark_long_cells(tokens: Sequence[Token]) -> None:
    """Class `long` on the table cells whose text is over LONG_CELL_CHARS: they wrap, the others stay on one line."""
    for cell, inline in zip(tokens, tokens[1:]):
        if cell.type == "td_open" and inline.type == "inline" and len(inline.content) > LONG_CELL_CHARS:
            cell.attrJoin("class", "long")


def _title(tokens: Sequence[Token]) -> str:
    """The text of the first level-1 heading."""
    for open_token, inline in zip(tokens, tokens[1:]):
        if open_token.type == "heading_open" and open_token.tag == "h1":
            return inline.content
    return DEFAULT_TITLE


def render_html(markdown: str, images: Mapping[str, bytes]) -> str:
    """The self-contained HTML page of `markdown`; `images` maps each file name the Markdown shows to its bytes."""
    parser = _parser()
    tokens = parser.parse(markdown)
    _embed_images(tokens, images)
    _mark_long_cells(tokens)
    body = parser.renderer.render(tokens, parser.options, {})
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(_title(tokens))}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        "<main>",
        body,
        "</main>",
        "</body>",
        "</html>",
        "",
    ])

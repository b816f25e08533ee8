"""MkDocs hooks for the spinerisk site.

- ``on_page_markdown``: a page line that is exactly ``<!-- spinerisk:schema-reference -->``
  is replaced by ``spinerisk.schema.SPINE_SCHEMA.to_markdown()``, so the documented units,
  ranges, code lists and cross-field rules are always those the validator enforces.
- ``on_page_content``: docstrings use Sphinx cross-reference roles (``:class:`Schema```),
  which mkdocstrings renders literally; the role prefix is removed from the HTML so that
  only the code name is shown.
"""

from __future__ import annotations

import re
from typing import Any

PLACEHOLDER = "<!-- spinerisk:schema-reference -->"
_SPHINX_ROLE = re.compile(r":(?:class|func|data|meth|attr|mod|exc|obj):(?=<code>)")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the schema-reference placeholder line with the generated Markdown."""
    if PLACEHOLDER not in markdown:
        return markdown
    from spinerisk.schema import SPINE_SCHEMA

    reference = SPINE_SCHEMA.to_markdown()
    lines = markdown.split("\n")
    return "\n".join(reference if line.strip() == PLACEHOLDER else line for line in lines)


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Drop Sphinx role prefixes (``:class:``, ``:func:``, ...) left in rendered docstrings."""
    return _SPHINX_ROLE.sub("", html)

"""MkDocs hook: generate the schema reference from the schema itself.

A page line that is exactly ``<!-- spinerisk:schema-reference -->`` is replaced by
``spinerisk.schema.SPINE_SCHEMA.to_markdown()``, so the documented units, ranges, code
lists and cross-field rules are always those the validator enforces.
"""

from __future__ import annotations

from typing import Any

PLACEHOLDER = "<!-- spinerisk:schema-reference -->"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the schema-reference placeholder line with the generated Markdown."""
    if PLACEHOLDER not in markdown:
        return markdown
    from spinerisk.schema import SPINE_SCHEMA

    reference = SPINE_SCHEMA.to_markdown()
    lines = markdown.split("\n")
    return "\n".join(reference if line.strip() == PLACEHOLDER else line for line in lines)

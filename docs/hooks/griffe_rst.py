"""A griffe extension (loaded by mkdocstrings, see mkdocs.yml) for the reST left in docstrings.

The library's docstrings are Google style, with some reST inside: Sphinx roles
(:class:`~torch_gdla.result.Result`, :meth:`closure`, :mod:`.rules`) and simple tables
(``====  ====`` rules).  Markdown shows the roles as stray text and the tables as one run-on
paragraph, so before rendering this extension rewrites, in the docstring text only (the
library's files are not touched):

* each role into an *optional* cross-reference: a link when the target is documented on the
  site, plain code otherwise (so an unknown target never fails ``mkdocs build --strict``);
* each simple table into a Markdown table;
* a paragraph ending in ``::`` (a reST literal block follows) into one ending in ``:`` (the
  indented block after it is a Markdown code block already).
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

ROLE = re.compile(r":(?:class|meth|func|mod|attr|data|exc|obj):`(~?)([^`]+)`")
RULE = re.compile(r"^(\s*)(=+)(\s+)(=+)\s*$")
LITERAL = re.compile(r"(\S)::$", re.MULTILINE)


def _target(obj: Object, name: str) -> str:
    """The full dotted path a role's target most likely means, seen from ``obj``."""
    if name.startswith("torch_gdla."):
        return name
    module = obj if obj.is_module else obj.module
    if name.startswith("."):  # relative to the module's package
        package = module.path if module.is_package else module.path.rsplit(".", 1)[0]
        return package + name
    scope = obj if obj.is_class else obj.parent if obj.parent is not None and obj.parent.is_class else None
    head = name.split(".", 1)[0]
    if scope is not None and head in scope.all_members:
        return f"{scope.path}.{name}"
    return f"{module.path}.{name}"


def _roles(obj: Object, text: str) -> str:
    def link(match: re.Match[str]) -> str:
        tilde, name = match.groups()
        name = name.strip()
        shown = name.rsplit(".", 1)[-1] if tilde else name.lstrip(".")
        return f'<autoref optional identifier="{_target(obj, name)}"><code>{shown}</code></autoref>'

    return ROLE.sub(link, text)


def _tables(text: str) -> str:
    """reST simple tables of two columns (continuation lines indented under the second)."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        rule = RULE.match(lines[i])
        end = next((j for j in range(i + 1, len(lines)) if RULE.match(lines[j])), None) if rule else None
        if rule is None or end is None:
            out.append(lines[i])
            i += 1
            continue
        indent, first = len(rule.group(1)), len(rule.group(1)) + len(rule.group(2))
        rows: list[list[str]] = []
        for line in lines[i + 1 : end]:
            split = first
            while split < len(line) and not line[split].isspace() and not line[split - 1].isspace():
                split += 1  # an entry that runs into the gap
            key, value = line[indent:split].strip(), line[split:].strip()
            if key or not rows:
                rows.append([key, value])
            else:
                rows[-1][1] += " " + value
        out += ["", "| | |", "|---|---|"] + [f"| {key} | {value} |" for key, value in rows] + [""]
        i = end + 1
    return "\n".join(out)


class RestToMarkdown(Extension):
    """Rewrites Sphinx roles and reST simple tables in every docstring."""

    def on_object(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = LITERAL.sub(r"\1:", _tables(_roles(obj, obj.docstring.value)))

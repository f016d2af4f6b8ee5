"""Markdown → Atlassian Document Format (ADF), the JSON document Jira Cloud's REST v3 wants as a description.

Only what ticket bodies use: headings, paragraphs, bullet and numbered lists (nesting flattened), fenced code,
block quotes, rules, and inline `code`, **bold**, _italic_ and [links](url). Tables become code blocks (ADF
tables are verbose and Jira renders a monospace table well enough). Hidden HTML comments (the fingerprint
marker) are dropped: Jira deduplicates by label. Every text node is non-empty, as ADF requires.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Node = dict[str, Any]

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+(.*)$")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
_COMMENT = re.compile(r"^\s*<!--.*-->\s*$")
_INLINE = re.compile(
    r"`(?P<code>[^`]+)`"
    r"|\*\*(?P<strong>.+?)\*\*"
    r"|\[(?P<label>[^\]]+)\]\((?P<href>[^)\s]+)\)"
    r"|(?<![\w*])[*_](?P<em>[^*_\s](?:[^*_]*[^*_\s])?)[*_](?![\w*])"
)


def markdown_to_adf(markdown: str) -> Node:
    """A valid ADF `doc` (version 1) for `markdown`."""
    blocks: list[Node] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if not stripped or _COMMENT.match(line):
            index += 1
        elif stripped.startswith("```"):
            index = _code_fence(lines, index, blocks)
        elif stripped.startswith("|"):
            table = _take(lines, index, lambda text: text.strip().startswith("|"))
            blocks.append(code_block("\n".join(text.strip() for text in table)))
            index += len(table)
        elif heading := _HEADING.match(line):
            blocks.append(
                {"type": "heading", "attrs": {"level": len(heading[1])}, "content": inline(heading[2])}
            )
            index += 1
        elif _RULE.match(line):
            blocks.append({"type": "rule"})
            index += 1
        elif _BULLET.match(line) or _NUMBERED.match(line):
            pattern = _BULLET if _BULLET.match(line) else _NUMBERED
            entries = _take(lines, index, _matches(pattern))
            items = [_list_item(match[1]) for match in map(pattern.match, entries) if match]
            blocks.append({"type": "bulletList" if pattern is _BULLET else "orderedList", "content": items})
            index += len(entries)
        elif stripped.startswith(">"):
            quoted = _take(lines, index, lambda text: text.strip().startswith(">"))
            text = " ".join(entry.strip()[1:].strip() for entry in quoted)
            blocks.append({"type": "blockquote", "content": [paragraph(text)]})
            index += len(quoted)
        else:
            prose = _take(lines, index, _is_prose)
            blocks.append(paragraph(" ".join(entry.strip() for entry in prose)))
            index += len(prose)
    return {"version": 1, "type": "doc", "content": blocks or [paragraph("")]}


def paragraph(text: str) -> Node:
    return {"type": "paragraph", "content": inline(text)}


def code_block(text: str, language: str | None = None) -> Node:
    node: Node = {"type": "codeBlock", "content": [{"type": "text", "text": text}] if text else []}
    if language:
        node["attrs"] = {"language": language}
    return node


def inline(text: str) -> list[Node]:
    """Text nodes with marks; plain text between the marked runs."""
    nodes: list[Node] = []
    position = 0
    for match in _INLINE.finditer(text):
        _text(nodes, text[position : match.start()])
        if match["code"] is not None:
            _text(nodes, match["code"], [{"type": "code"}])
        elif match["strong"] is not None:
            _text(nodes, match["strong"], [{"type": "strong"}])
        elif match["label"] is not None:
            _text(nodes, match["label"], [{"type": "link", "attrs": {"href": match["href"]}}])
        else:
            _text(nodes, match["em"], [{"type": "em"}])
        position = match.end()
    _text(nodes, text[position:])
    return nodes


def _text(nodes: list[Node], text: str, marks: list[Node] | None = None) -> None:
    if text:
        nodes.append({"type": "text", "text": text, **({"marks": marks} if marks else {})})


def _list_item(text: str) -> Node:
    return {"type": "listItem", "content": [paragraph(text)]}


def _code_fence(lines: list[str], start: int, blocks: list[Node]) -> int:
    language = lines[start].strip()[3:].strip() or None
    end = start + 1
    while end < len(lines) and not lines[end].strip().startswith("```"):
        end += 1
    blocks.append(code_block("\n".join(lines[start + 1 : end]), language))
    return end + 1  # past the closing fence (or the end of an unclosed one)


def _take(lines: list[str], start: int, belongs: Callable[[str], bool]) -> list[str]:
    end = start
    while end < len(lines) and belongs(lines[end]):
        end += 1
    return lines[start:end]


def _matches(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    return lambda text: pattern.match(text) is not None


def _is_prose(line: str) -> bool:
    stripped = line.strip()
    return bool(
        stripped
        and not _COMMENT.match(line)
        and not stripped.startswith(("```", "|", ">"))
        and not _HEADING.match(line)
        and not _RULE.match(line)
        and not _BULLET.match(line)
        and not _NUMBERED.match(line)
    )

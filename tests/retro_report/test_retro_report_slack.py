"""The retro's Slack message: Block Kit that Slack accepts (checked by slack_sdk's own models and by hand),
escaped mrkdwn, and Approve/Drop buttons while the retro awaits approval."""

from __future__ import annotations

import json
import re
from typing import Any

from slack_sdk.models.blocks import Block

from tests.retro_report.support import awaiting_result, empty_result, huge_result, planted_result
from tools.retro.report import slack_blocks

BROKEN_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


def _texts(block: dict[str, Any]) -> list[dict[str, Any]]:
    """Every text object of a block."""
    if block["type"] in ("header", "section"):
        return [block["text"]]
    if block["type"] == "context":
        return list(block["elements"])
    if block["type"] == "actions":
        return [element["text"] for element in block["elements"]]
    return []


def _check(blocks: list[dict[str, Any]]) -> list[str]:
    assert 1 <= len(blocks) <= 50
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None, block
        parsed.validate_json()  # raises on any limit slack_sdk knows
        for text in _texts(block):
            assert 1 <= len(text["text"]) <= 3000
            if text["type"] == "mrkdwn":
                assert "<" not in text["text"] and ">" not in text["text"], text["text"]
                assert not BROKEN_ENTITY.search(text["text"]), text["text"]
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "actions":
            assert len(block["elements"]) <= 25
            assert all(len(button["text"]["text"]) <= 75 for button in block["elements"])
    json.dumps(blocks)
    return [block["type"] for block in blocks]


def test_completed_retro_shows_high_and_medium_insights_with_their_evidence() -> None:
    blocks = slack_blocks(planted_result())

    assert _check(blocks) == ["header", "section", "section", "section", "context"]
    header, summary, high, medium, context = blocks
    assert header["text"] == {"type": "plain_text", "text": "Sprint 2026-S14 retro", "emoji": True}
    assert summary["text"]["text"] == (
        "*Window* 2026-02-16 → 2026-03-02 · *baseline* 2026-02-02 → 2026-02-16\n"
        "synthesis: llm (gpt-4o-mini) · status: completed\n2 significant changes among 5 signals."
    )
    assert high["text"]["text"].startswith("*[High] Solo podcasters stall in onboarding since v2.4.0*\n")
    assert high["text"]["text"].endswith("\n_Evidence:_ S1, S3, S4")
    assert medium["text"]["text"].startswith("*[Medium] First sponsor report takes longer*")
    assert "Agencies" not in json.dumps(blocks)  # Low impact stays in the full report
    assert context["elements"][0]["text"] == (
        "retro retro-2026-03-02-s14 · 5 signals · 3 backlog items · 2 LLM calls · 10,412 input tokens · "
        "1,873 output tokens · 1 warning"
    )
    assert all(text.get("verbatim") for block in blocks for text in _texts(block) if text["type"] == "mrkdwn")


def test_untrusted_text_is_escaped_for_mrkdwn() -> None:
    high = slack_blocks(planted_result())[2]["text"]["text"]

    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt; *bold* &lt;!channel&gt; &amp; [click](https://evil.example)"
        in high
    )
    assert "<!channel>" not in high and "<script>" not in high


def test_empty_retro_says_no_significant_changes() -> None:
    blocks = slack_blocks(empty_result())

    assert _check(blocks) == ["header", "section", "section", "context"]
    assert blocks[0]["text"]["text"] == "Deployment v2.4.1 retro"
    assert "synthesis: rules" in blocks[1]["text"]["text"]
    assert "No significant changes: the retro found no signals in this window." in blocks[1]["text"]["text"]
    assert blocks[2]["text"]["text"] == "No High or Medium impact insights in this retro."
    assert "0 signals · 0 backlog items · 0 LLM calls" in blocks[3]["elements"][0]["text"]


def test_awaiting_approval_adds_approve_and_drop_buttons_per_proposed_item() -> None:
    blocks = slack_blocks(awaiting_result(items=2))

    types = _check(blocks)
    assert types == [
        "header", "section", "section", "section", "section", "section", "actions", "section", "actions", "context",
    ]  # fmt: skip
    assert blocks[4]["text"]["text"].startswith("*2 backlog items await approval.*")
    assert blocks[5]["text"]["text"].startswith(
        "*B1 · Restore the one-step RSS import in onboarding*\nRICE 1,250 = "
    )
    for actions, item_id in ((blocks[6], "B1"), (blocks[8], "B2")):
        approve, drop = actions["elements"]
        assert (approve["action_id"], approve["style"], approve["text"]["text"]) == (
            "retro_approve",
            "primary",
            f"Approve {item_id}",
        )
        assert (drop["action_id"], drop["style"], drop["text"]["text"]) == (
            "retro_drop",
            "danger",
            f"Drop {item_id}",
        )
        for button in (approve, drop):
            assert json.loads(button["value"]) == {"retro_id": "retro-2026-03-02-s14", "item_id": item_id}


def test_only_proposed_items_get_buttons_and_only_while_awaiting_approval() -> None:
    assert "actions" not in _check(slack_blocks(planted_result()))
    # filed and duplicate items are not proposals, even in a retro that awaits approval
    blocks = slack_blocks(planted_result(status="awaiting_approval"))
    assert "actions" not in _check(blocks)


def test_a_huge_retro_stays_within_block_kit_limits() -> None:
    result = huge_result(signals=200, insights=30, items=40)
    for max_insights in (0, 5, 50):
        blocks = slack_blocks(result, max_insights=max_insights)
        types = _check(blocks)
        assert len(blocks) == 50 if max_insights else len(blocks) <= 50
        assert types[0] == "header" and types[-1] == "context"
        approvals = [block for block in blocks if block["type"] == "actions"]
        more = [block["elements"][0]["text"] for block in blocks if block["type"] == "context"][:-1]
        assert any(text.startswith(f"… and {40 - len(approvals)} more await approval") for text in more)
        shown = sum(block["type"] == "section" and block["text"]["text"].startswith("*[") for block in blocks)
        assert any(text.startswith(f"… and {20 - shown} more High/Medium insights") for text in more)
        assert shown <= max_insights

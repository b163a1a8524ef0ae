"""Splitting a reasoning text into steps: "Step N:" markers, numbered or bulleted lists, else lines.

Final-answer lines at the end ("The answer is ...", "#### 72", "\\boxed{72}") are not steps, and text
before the first marker is an introduction, so that "Step 3" stays step 3.
"""

from __future__ import annotations

import logging
import re

_log = logging.getLogger(__name__)

_FINAL_ANSWER_LINE = re.compile(
    r"^[\s*_#>$]*(?:####|\\boxed\b|(?:(?:so|therefore|thus|hence)\b[\s,]*)?(?:the\s+)?(?:final\s+)?"
    r"answer\b\s*(?:is\b|:|=|\*))", re.IGNORECASE)
_STEP_MARKER = re.compile(
    r"^\s*(?:#{1,6}\s*|[-*•+]\s+)?(?:\*\*|__)?\s*step\s*\d+\s*(?:\*\*|__)?\s*"
    r"(?::|\)|\.(?!\d)|[-–—](?=\s)|$)",
    re.IGNORECASE)
_NUMBERED_ITEM = re.compile(r"^\s*(?:\*\*|__)?\(?\d{1,3}[.)](?:\*\*|__)?(?:\s+|$)")
_BULLET_ITEM = re.compile(r"^\s*[-*•+]\s+")
_LEADING_BOLD = re.compile(r"^\s*(?:\*\*|__)?\s*")


def split_steps(reasoning: str) -> list[str]:
    r"""The steps of a reasoning text, without their markers.

    Tried in order, the first format with at least two markers wins: "Step N:" / "Step N." (also bold or
    as a heading), numbered lists ("1." "2)" "(3)"), bullet lists; otherwise every non-empty line is a
    step. Lines under a marker belong to its step. Text before the first marker is an introduction, not
    a step, so that "Step 3" stays step 3. Final-answer lines at the end ("The answer is ...",
    "#### 72", "\boxed{72}") are not steps.
    """
    lines = reasoning.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = _without_final_answer_lines(lines)
    for marker in (_STEP_MARKER, _NUMBERED_ITEM, _BULLET_ITEM):
        starts = [k for k, line in enumerate(lines) if marker.match(line)]
        if len(starts) >= 2:
            return _split_at_markers(lines, starts, marker)
    return [line.strip() for line in lines if line.strip()]


def _without_final_answer_lines(lines: list[str]) -> list[str]:
    end = len(lines)
    while end and (not lines[end - 1].strip() or _FINAL_ANSWER_LINE.match(lines[end - 1])):
        end -= 1
    return lines[:end]


def _split_at_markers(lines: list[str], starts: list[int], marker: re.Pattern[str]) -> list[str]:
    if any(line.strip() for line in lines[:starts[0]]):
        _log.debug("split_steps: text before the first step marker is not a step")
    steps = []
    for start, stop in zip(starts, starts[1:] + [len(lines)]):
        head = _LEADING_BOLD.sub("", lines[start][marker.match(lines[start]).end():], count=1)
        if head.count("**") % 2:  # "**Step 1: Title**": the bold opened before the marker closes here
            head = head.replace("**", "", 1)
        body = [head] + lines[start + 1:stop]
        text = "\n".join(line.strip() for line in body if line.strip())
        if text:
            steps.append(text)
    return steps

"""Preference pairs (prompt, chosen, rejected) from the traces of the `contrastive` generation strategy.

That strategy writes, per problem, one correct trace (`metadata.role == "chosen"`) and plausible-but-wrong ones
(`"rejected"`: teacher rewrites with a planted error, mined wrong samples), all sharing `metadata.pair_id`. Every
rejected trace becomes one pair with the chosen trace of its group (several chosen traces in one group, as after a
merge, pair with each rejected one).

Prompt and targets are cot_sft's (prompting.py): the same messages, and the chosen side is exactly the completion a
cot_sft student would learn, so a pair-trained student is asked, evaluated and compared like a cot_sft one. The
rejected side keeps the wrong answer its reasoning concluded.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdistill.errors import InputError, RdistillError
from rdistill.jsonl import iter_json_lines
from rdistill.records import Trace
from rdistill.train.examples import Example, TraceData, load_trace_data
from rdistill.train.prompting import PromptFormat, reasoning_with_answer

log = logging.getLogger(__name__)

ROLES = ("chosen", "rejected")


@dataclass(frozen=True)
class Pair:
    prompt: list[dict[str, str]]  # the chat messages that ask the question (cot_sft's)
    chosen: str  # the assistant reply to prefer
    rejected: str  # the assistant reply to push below it
    pair_id: str
    chosen_index: int  # positions in the trace file's records, for debugging
    rejected_index: int
    origin: str | None = None  # how the rejected trace was made: "rewrite", "sample", "mined"

    def chosen_example(self) -> Example:
        return Example(self.prompt, self.chosen, task="chosen", trace_index=self.chosen_index)

    def rejected_example(self) -> Example:
        return Example(self.prompt, self.rejected, task="rejected", trace_index=self.rejected_index)

    def conversational(self) -> dict[str, Any]:
        """TRL's conversational preference format (what DPOTrainer reads)."""
        return {"prompt": self.prompt, "chosen": [{"role": "assistant", "content": self.chosen}],
                "rejected": [{"role": "assistant", "content": self.rejected}]}


@dataclass(frozen=True)
class PairSet:
    pairs: list[Pair]
    counts: dict[str, Any] = field(default_factory=dict)  # pairs, groups, unpaired sides, rejected by origin


def rejected_completion(trace: Trace) -> str:
    """The rejected reply. With a recorded (wrong) answer it ends like cot_sft's targets; without one, the reasoning
    as written: reasoning_with_answer would append the *gold* answer and turn the negative into a right answer."""
    return reasoning_with_answer(trace) if trace.predicted_answer is not None else trace.reasoning.strip()


def build_pairs(data: TraceData, prompt: PromptFormat) -> PairSet:
    """Every (chosen, rejected) pair of the trace file, groups in file order; errors name file, line and field."""
    groups: dict[str, dict[str, list[int]]] = {}
    for index, trace in enumerate(data.traces):
        pair_id, role = _pair_metadata(data, index, trace)
        group = groups.setdefault(pair_id, {"chosen": [], "rejected": []})
        group[role].append(index)
    pairs: list[Pair] = []
    unpaired = Counter()
    for pair_id, group in groups.items():
        if not group["chosen"] or not group["rejected"]:
            unpaired["chosen_without_rejected" if group["chosen"] else "rejected_without_chosen"] += 1
            continue
        for c in group["chosen"]:
            chosen = data.traces[c]
            for r in group["rejected"]:
                rejected = data.traces[r]
                if rejected.question.strip() != chosen.question.strip():
                    raise _located(data, r, "question", f"pair {pair_id!r}: the rejected trace asks another question "
                                   f"than its chosen trace (line {_line_of(data, c)})")
                pairs.append(Pair(prompt.messages(chosen.question), reasoning_with_answer(chosen),
                                  rejected_completion(rejected), pair_id, c, r, rejected.metadata.get("origin")))
    counts = {"pairs": len(pairs), "groups": len(groups), "groups_paired": len({p.pair_id for p in pairs}),
              **{k: unpaired[k] for k in ("chosen_without_rejected", "rejected_without_chosen")},
              "rejected_by_origin": dict(Counter(p.origin or "unknown" for p in pairs))}
    if not pairs:
        hint = (" (the file holds chosen traces only: filter with keep_rejected_pairs so the rejected side is kept)"
                if unpaired["chosen_without_rejected"] else "")
        raise RdistillError(f"{data.path}: no (chosen, rejected) pair to train on{hint}")
    if unpaired:
        log.warning("pairs: %d groups without a chosen or a rejected trace were left out (%s)", sum(unpaired.values()),
                    ", ".join(f"{k} {v}" for k, v in unpaired.items()))
    return PairSet(pairs, counts)


def load_pairs(path: str | Path, prompt: PromptFormat | None = None) -> PairSet:
    """The pairs of a trace file, asked with `prompt` (default: cot_sft's, no system prompt)."""
    return build_pairs(load_trace_data(path), prompt or PromptFormat())


def _pair_metadata(data: TraceData, index: int, trace: Trace) -> tuple[str, str]:
    pair_id, role = trace.metadata.get("pair_id"), trace.metadata.get("role")
    if not isinstance(pair_id, str) or not pair_id:
        raise _located(data, index, "metadata.pair_id",
                       "no pair id: pair methods train on the traces of `rdistill generate --strategy contrastive` "
                       "(one chosen and its rejected traces per problem, sharing metadata.pair_id)")
    if role not in ROLES:
        raise _located(data, index, "metadata.role", f"role {role!r}: a pair trace is 'chosen' or 'rejected'")
    return pair_id, role


def _located(data: TraceData, index: int, field_name: str, message: str) -> InputError:
    return InputError(message, path=data.path, line=_line_of(data, index), field=field_name)


def _line_of(data: TraceData, index: int) -> int | None:
    """The file line of the index-th record (records skip blank lines); read again only when an error needs it."""
    try:
        for position, (lineno, _) in enumerate(iter_json_lines(data.path)):
            if position == index:
                return lineno
    except (InputError, OSError):
        pass
    return None

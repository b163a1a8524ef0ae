"""Pairs for the pair methods (dpo, contrastive): built from a contrastive trace file the way cot_sft builds its
examples, located errors for traces that are not pairs, and the filter keeping a rejected side only with its chosen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rdistill.data.synth import generate
from rdistill.errors import InputError, RdistillError
from rdistill.filter import FilterConfig, filter_traces, judge_traces
from rdistill.jsonl import write_records
from rdistill.records import Trace
from rdistill.train.cot_sft import build_examples
from rdistill.train.examples import load_trace_data
from rdistill.train.pairs import build_pairs, load_pairs
from rdistill.train.prompting import PromptFormat


def _trace(problem, reasoning: str, predicted: str, role: str, origin: str, sample: int) -> dict:
    return {"problem_id": problem.id, "question": problem.question, "answer": problem.answer,
            "reasoning": reasoning, "predicted_answer": predicted, "correct": predicted == problem.answer,
            "teacher": "gold-solution", "strategy": "contrastive", "sample_index": sample,
            "difficulty": problem.difficulty,
            "metadata": {"pair_id": f"{problem.id}:contrastive", "role": role, "origin": origin}}


def contrastive_records(n: int = 6, *, seed: int = 0) -> list[dict]:
    """As the contrastive strategy writes them: per problem the gold solution as the chosen trace, a rewrite with
    its last result off by one (a located arithmetic error, a wrong answer), and for multi-step problems a mined
    sample that stops after its first step."""
    records = []
    for p in generate("arithmetic", n, seed=seed, split="train", steps=(1, 4)):
        lines = p.solution.splitlines()
        steps = [line for line in lines if line.startswith("Step")]
        wrong = str(int(p.answer) + 1)
        head, _, _ = steps[-1].rpartition("= ")
        rewrite = "\n".join(steps[:-1] + [f"{head}= {wrong}", f"The answer is {wrong}."])
        records.append(_trace(p, p.solution, p.answer, "chosen", "sample", 0))
        records.append(_trace(p, rewrite, wrong, "rejected", "rewrite", 1000))
        if len(steps) > 1:
            early = steps[0].rpartition("= ")[2]
            records.append(_trace(p, f"{steps[0]}\nThe answer is {early}.", early, "rejected", "mined", 1))
    return records


def write_pair_traces(path: Path, n: int = 6, *, seed: int = 0) -> Path:
    write_records(path, contrastive_records(n, seed=seed))
    return path


def test_pairs_pair_each_rejected_trace_with_its_chosen_one_asked_like_cot_sft(tmp_path):
    data = load_trace_data(write_pair_traces(tmp_path / "pairs.jsonl"))
    prompt = PromptFormat("Think step by step.")
    pair_set = build_pairs(data, prompt)
    rejected = [t for t in data.traces if t.metadata["role"] == "rejected"]
    assert len(pair_set.pairs) == len(rejected) == pair_set.counts["pairs"]
    assert pair_set.counts["groups"] == pair_set.counts["groups_paired"] == 6
    assert pair_set.counts["rejected_by_origin"]["rewrite"] == 6
    sft = {e.trace_index: e for e in build_examples(data, prompt)}
    for pair in pair_set.pairs:
        chosen, wrong = data.traces[pair.chosen_index], data.traces[pair.rejected_index]
        assert chosen.metadata["role"] == "chosen" and wrong.metadata["pair_id"] == chosen.metadata["pair_id"]
        # The prompt and the chosen reply are exactly what a cot_sft student trains on.
        assert pair.prompt == sft[pair.chosen_index].prompt and pair.chosen == sft[pair.chosen_index].completion
        assert pair.prompt[0] == {"role": "system", "content": "Think step by step."}
        assert pair.rejected == wrong.reasoning.strip() and pair.rejected.endswith(f"{wrong.predicted_answer}.")
        assert pair.conversational()["rejected"] == [{"role": "assistant", "content": pair.rejected}]


def test_a_rejected_trace_without_a_recorded_answer_is_not_given_the_gold_one(tmp_path):
    records = contrastive_records(1)
    del records[1]["predicted_answer"]
    write_records(tmp_path / "p.jsonl", records)
    [pair] = load_pairs(tmp_path / "p.jsonl").pairs
    assert pair.rejected == records[1]["reasoning"] and records[1]["answer"] not in pair.rejected.splitlines()[-1]


@pytest.mark.parametrize("field, value", [("pair_id", None), ("role", "winner")])
def test_a_trace_that_is_not_a_pair_trace_is_named_by_file_line_and_field(tmp_path, field, value):
    records = contrastive_records(2)
    if value is None:
        del records[3]["metadata"][field]
    else:
        records[3]["metadata"][field] = value
    path = tmp_path / "mixed.jsonl"
    # A blank line first: the error must name the file's line, not the record's position.
    path.write_text("\n" + "\n".join(json.dumps(r) for r in records) + "\n")
    with pytest.raises(InputError) as caught:
        load_pairs(path)
    error = caught.value
    assert (error.path, error.line, error.field) == (str(path.resolve()), 5, f"metadata.{field}")


def test_a_file_of_chosen_traces_only_says_how_to_keep_the_rejected_side(tmp_path):
    records = [r for r in contrastive_records(3) if r["metadata"]["role"] == "chosen"]
    write_records(tmp_path / "chosen.jsonl", records)
    with pytest.raises(RdistillError, match="keep_rejected_pairs"):
        load_pairs(tmp_path / "chosen.jsonl")


# ------------------------------------------------------------------------------------------ the filter


def traces(n: int = 4) -> list[Trace]:
    return [Trace.model_validate(r) for r in contrastive_records(n)]


def test_the_default_filter_drops_every_rejected_trace_and_keeps_the_chosen_ones():
    decisions = judge_traces(traces())
    for d in decisions:
        assert d.kept == (d.trace.metadata["role"] == "chosen"), d.reason


def test_keep_rejected_pairs_keeps_a_rejected_trace_only_with_its_chosen_one():
    items = traces()
    broken_pair = items[0].metadata["pair_id"]
    # The first chosen trace gets a wrong step (right answer): the quality checks still apply to it and drop it.
    items[0] = items[0].model_copy(update={"reasoning": items[0].reasoning.replace(" = ", " = 1", 1)})
    # A "rejected" trace that is right after all is no negative.
    second = next(i for i, t in enumerate(items) if t.metadata["role"] == "rejected"
                  and t.metadata["pair_id"] != broken_pair)
    items[second] = items[second].model_copy(update={"reasoning": items[second - 1].reasoning,
                                                     "predicted_answer": items[second].answer})
    decisions = judge_traces(items, FilterConfig(keep_rejected_pairs=True))
    for d in decisions:
        meta = d.trace.metadata
        if meta["role"] == "chosen":
            assert d.kept == (meta["pair_id"] != broken_pair)
        elif meta["pair_id"] == broken_pair:
            assert d.reason == "unpaired_rejected" and d.details["chosen"] == "wrong_arithmetic"
        elif d.trace.predicted_answer == d.trace.answer:
            assert d.reason == "rejected_is_correct"
        else:
            assert d.kept  # wrong answer and a planted arithmetic error: kept for its pair all the same
    kept, report = filter_traces(items, FilterConfig(keep_rejected_pairs=True))
    assert report.kept + sum(report.dropped_by_reason.values()) == report.input == len(items)
    assert report.dropped_by_reason["unpaired_rejected"] == sum(
        1 for t in items if t.metadata["pair_id"] == broken_pair and t.metadata["role"] == "rejected")
    assert report.dropped_by_reason["rejected_is_correct"] == 1
    kept_rejected = [t for t in kept if t.metadata["role"] == "rejected"]
    assert report.pairs == {"chosen_kept": 3, "rejected_kept": len(kept_rejected),
                            "groups_paired": len({t.metadata["pair_id"] for t in kept_rejected})}
    assert report.config["keep_rejected_pairs"] is True


def test_a_rewrite_is_not_dropped_as_a_near_duplicate_of_its_chosen_trace():
    items = traces(2)
    config = FilterConfig(keep_rejected_pairs=True, dedup=True, dedup_threshold=0.5)
    assert all(d.kept for d in judge_traces(items, config))
    assert FilterConfig().keep_rejected_pairs is False and filter_traces(items)[1].pairs is None

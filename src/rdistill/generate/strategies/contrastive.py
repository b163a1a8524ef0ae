"""`contrastive`: for each problem, one correct trace ("chosen") and plausible-but-wrong ones ("rejected"), so
preference training (DPO) can pair them by `metadata.pair_id` and `metadata.role`.

Candidates are the teacher's own chain-of-thought samples (drawn with the cot prompt, so a previous `cot` run
with the same settings makes them free through the cache), or the traces of an existing file
(`--mine-from`). The chosen trace is the first correct candidate whose arithmetic re-checks, else the first
correct one. Negatives come from two places:
- mined: candidates the teacher already got wrong (kept when an answer was extracted and it is wrong);
- rewrite: the teacher is asked to plant one subtle arithmetic error in the chosen solution; kept only when
  the final answer is wrong and the step checker locates the first wrong step.
Every trace records `metadata.first_wrong_step` (from `rdistill.steps`), `origin` and the size of its group.

Sample indexes: a candidate keeps its own (position among the mined traces, for --mine-from); a rewrite is
sample REWRITE_INDEX_BASE + attempt, so the two never collide. A problem without any correct candidate
yields nothing (rerunning later with more samples, or `rationalize`, can supply one). A problem cut short by
the budget writes nothing either: an unpaired candidate is no use to DPO, and its answers are in the cache.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rdistill.errors import InputError
from rdistill.generate.strategies.base import Strategy, choices_text
from rdistill.generate.strategies.cot import ChainOfThought
from rdistill.generate.trace_builder import Prompt, judge_text
from rdistill.generate.voting import has_gold
from rdistill.records import Problem, Trace
from rdistill.steps import check_steps

log = logging.getLogger(__name__)

REWRITE_INDEX_BASE = 1000
DEFAULT_CANDIDATES = 4


class Contrastive(Strategy):
    name = "contrastive"

    def __init__(self, options, templates):
        super().__init__(options, templates)
        if options.adaptive:
            raise InputError("contrastive draws a fixed number of candidates (--samples); it cannot be adaptive",
                             field="adaptive")
        self.sampler = ChainOfThought(options, templates)  # the same prompts as a cot run: shared cache entries
        self.mined = load_candidates(options.mine_from) if options.mine_from else None

    def samples(self) -> int:
        return self.options.samples or DEFAULT_CANDIDATES

    def temperature(self) -> float:
        return self.options.temperature_for(self.samples())

    def check_problem(self, problem: Problem) -> None:
        if not has_gold(problem):
            raise InputError(f"problem {problem.id!r} has no gold answer; contrastive pairs need one to tell "
                             "right from wrong", field="answer")

    async def run(self, problem: Problem, ctx) -> list[Trace]:
        candidates = await self._candidates(problem, ctx)
        chosen = _pick_chosen(candidates)
        if chosen is None:
            log.debug("contrastive: no correct candidate for %s among %d", problem.id, len(candidates))
            return []
        pair_id = f"{problem.id}:contrastive"
        group = [_label(chosen, pair_id, "chosen")]
        group += [_label(c, pair_id, "rejected") for c in candidates
                  if c is not chosen and c.correct is False and c.predicted_answer is not None]
        rewrite = await self._rewrite(problem, chosen, ctx)
        if rewrite is not None:
            group.append(_label(rewrite, pair_id, "rejected"))
        return [t.model_copy(update={"metadata": {**t.metadata, "group_size": len(group)}}) for t in group]

    async def _candidates(self, problem: Problem, ctx) -> list[Trace]:
        if self.mined is not None:
            return self.mined.for_problem(problem)
        items = [(self.sampler.prompt(problem, k), k) for k in range(self.samples())]
        traces = await ctx.sample_many(items, self.temperature())
        return [_with_origin(t, "sample") for t in traces if t is not None]

    async def _rewrite(self, problem: Problem, chosen: Trace, ctx) -> Trace | None:
        rewrite = self.templates.contrastive_rewrite
        system, user = rewrite.render(question=problem.question, choices=choices_text(problem),
                                      reasoning=chosen.reasoning.strip(), answer=problem.answer)
        prompt = Prompt(user=user, system=system, hinted=True,
                        metadata={"domain": self.sampler.domain_of(problem), "origin": "rewrite",
                                  "rewrite_of": chosen.sample_index})
        for attempt in range(self.options.rewrite_attempts):
            [trace] = await ctx.sample_many([(prompt, REWRITE_INDEX_BASE + attempt)], self.temperature())
            if trace is None:
                continue
            report = check_steps(trace.reasoning)
            if (trace.predicted_answer is not None and trace.correct is False
                    and report.first_wrong_step is not None and trace.reasoning.strip() != chosen.reasoning.strip()):
                return trace
            log.debug("contrastive: rewrite %d of %s rejected (answer %r, correct %s, first wrong step %s)",
                      attempt, problem.id, trace.predicted_answer, trace.correct, report.first_wrong_step)
        return None


def _pick_chosen(candidates: list[Trace]) -> Trace | None:
    correct = [c for c in candidates if c.correct]
    clean = [c for c in correct if check_steps(c.reasoning).first_wrong_step is None]
    return (clean or correct or [None])[0]


def _with_origin(trace: Trace, origin: str) -> Trace:
    return trace.model_copy(update={"metadata": {**trace.metadata, "origin": origin}})


def _label(trace: Trace, pair_id: str, role: str) -> Trace:
    metadata = {**trace.metadata, "pair_id": pair_id, "role": role,
                "first_wrong_step": check_steps(trace.reasoning).first_wrong_step}
    return trace.model_copy(update={"metadata": metadata})


class MinedCandidates:
    """Traces from an existing file, found by problem id or, for files made elsewhere, by question text."""

    def __init__(self, traces: list[Trace]):
        self._by_id: dict[str, list[Trace]] = {}
        self._by_question: dict[str, list[Trace]] = {}
        for trace in sorted(traces, key=lambda t: (t.strategy, t.sample_index)):
            self._by_id.setdefault(trace.problem_id, []).append(trace)
            self._by_question.setdefault(trace.question.strip(), []).append(trace)

    def for_problem(self, problem: Problem) -> list[Trace]:
        found = self._by_id.get(problem.id) or self._by_question.get(problem.question.strip()) or []
        out = []
        for position, source in enumerate(found):
            predicted, correct = judge_text(source.reasoning, problem)  # re-judged: the file may lack verdicts
            metadata = {**source.metadata, "origin": "mined",
                        "mined_from": {"strategy": source.strategy, "sample_index": source.sample_index}}
            out.append(source.model_copy(update={
                "problem_id": problem.id, "strategy": Contrastive.name, "sample_index": position,
                "predicted_answer": predicted, "correct": correct, "metadata": metadata}))
        return out


def load_candidates(path: str | Path) -> MinedCandidates:
    from rdistill.generate.store import read_traces_tolerant

    return MinedCandidates(read_traces_tolerant(path))

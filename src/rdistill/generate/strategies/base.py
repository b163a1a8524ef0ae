"""What a generation strategy is: per problem, ask the teacher for some samples and return the traces to keep.

Strategies never call the teacher directly. They ask their `ProblemContext` for sample k of a prompt; the
context hands back the trace already in the output file when there is one (that is what makes a rerun
resume for free), calls the teacher otherwise, and keeps count. `SampledStrategy` covers every strategy that
is "N independent samples of one prompt per problem", fixed or adaptive, with self-consistency votes.
"""

from __future__ import annotations

from typing import Protocol

from rdistill.generate.options import GenerationOptions
from rdistill.generate.templates import Templates, format_choices
from rdistill.generate.trace_builder import Prompt
from rdistill.generate.voting import (answers_of, first_round_size, majority_vote, next_round_size, stop_reason,
                                      vote_decided, vote_metadata)
from rdistill.records import Problem, Trace


class ProblemContext(Protocol):
    """The runner's side of one problem (see runner.py)."""

    answered: list[Trace]  # every trace obtained so far for this problem, reused or new

    async def sample_many(self, items: list[tuple[Prompt, int]], temperature: float) -> list[Trace | None]:
        """Sample k of each prompt (k given with it); None where the teacher failed for good."""
        ...


class Strategy:
    name: str = ""  # recorded as Trace.strategy

    def __init__(self, options: GenerationOptions, templates: Templates):
        self.options = options
        self.templates = templates

    def check_problem(self, problem: Problem) -> None:
        """Raise InputError for a problem this strategy cannot work on; called for all before any call."""

    async def run(self, problem: Problem, ctx: ProblemContext) -> list[Trace]:
        raise NotImplementedError

    def partial(self, problem: Problem, ctx: ProblemContext) -> list[Trace]:
        """The traces worth writing when the run stops (budget) before this problem is finished."""
        return []


class SampledStrategy(Strategy):
    votes = True  # self-consistency applies: samples answer the same prompt independently

    def prompt(self, problem: Problem, sample_index: int) -> Prompt:
        raise NotImplementedError

    def samples(self) -> int:
        return self.options.samples or 1

    def temperature(self) -> float:
        return self.options.temperature_for(self.options.max_samples if self.options.adaptive else self.samples())

    async def run(self, problem: Problem, ctx: ProblemContext) -> list[Trace]:
        if self.options.adaptive:
            return await self._run_adaptive(problem, ctx)
        items = [(self.prompt(problem, k), k) for k in range(self.samples())]
        traces = await ctx.sample_many(items, self.temperature())
        return self._annotate(problem, [t for t in traces if t is not None], {})

    async def _run_adaptive(self, problem: Problem, ctx: ProblemContext) -> list[Trace]:
        rule = self.options.stop_rule()
        traces: list[Trace] = []
        tried, batch = 0, first_round_size(rule, problem)
        while True:
            items = [(self.prompt(problem, k), k) for k in range(tried, tried + batch)]
            traces += [t for t in await ctx.sample_many(items, self.temperature()) if t is not None]
            tried += batch
            vote = majority_vote(answers_of(traces), problem)
            reason = stop_reason(vote, rule, tried)
            if reason is not None:
                return self._annotate(problem, traces, {"adaptive_stop": reason, "n_samples": tried})
            batch = next_round_size(vote, rule, tried)

    def partial(self, problem: Problem, ctx: ProblemContext) -> list[Trace]:
        extra = {"adaptive_stop": "budget", "n_samples": len(ctx.answered)} if self.options.adaptive else {}
        return self._annotate(problem, sorted(ctx.answered, key=lambda t: t.sample_index), extra)

    def _annotate(self, problem: Problem, traces: list[Trace], extra: dict) -> list[Trace]:
        with_votes = self.votes and (self.options.adaptive or self.samples() > 1)
        vote = majority_vote(answers_of(traces), problem) if with_votes else None
        # Adaptive: whether the vote is kept (agreement, or the vote test passes where sampling stopped otherwise).
        decided = (vote_decided(vote, self.options.stop_rule(), extra.get("adaptive_stop"))
                   if vote is not None and self.options.adaptive else None)
        out = []
        for position, trace in enumerate(traces):
            metadata = {**trace.metadata, **extra}
            if vote is not None:
                metadata.update(vote_metadata(vote, position, decided, drop_undecided=not self.options.keep_undecided))
                metadata["agrees_with_gold"] = trace.correct
            out.append(trace.model_copy(update={"metadata": metadata}))
        return out


def choices_text(problem: Problem) -> str:
    return format_choices(problem.choices)

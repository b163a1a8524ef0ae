"""The generation loop: problems in, traces appended to a JSONL file, resumable at any point.

Each problem is worked on by one worker at a time (several problems run concurrently; the client bounds the
calls in flight). A strategy asks for samples through a `_ProblemContext`, which
- hands back the trace already in the output file for that (problem, strategy, sample), without a call;
- otherwise calls the teacher, and turns the completion into a Trace (answer checked, steps split);
- stops sending once the budget is reached.
A problem's traces are appended together once the strategy has finished with it (votes need every sample),
each line flushed and fsynced. If the run dies in between, the answers it had are in the response cache,
so the rerun gets them back without paying; if it stops on the budget, the samples it has are written.

A sample that failed on a transient error (a timeout or stall, a dropped connection, a server error that the
client's own retries did not outlast) is tried again in this run: after the first pass over the problems, each
problem with such a failure runs again, its answered samples carried over so only the failed ones are sent, with
fewer requests in flight (half, then a quarter of the client's concurrency), for up to `retry_rounds` rounds.
Its traces are written once it has every sample or no round is left, so its votes see all of them. A sample that
still fails is counted in `failures` and does not stop the run: a rerun retries it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from rdistill.errors import InputError
from rdistill.generate.options import GenerationOptions
from rdistill.generate.progress import ProgressCallback, ProgressTracker
from rdistill.generate.sharding import select_shard
from rdistill.generate.store import existing_by_problem, read_traces_tolerant
from rdistill.generate.strategies import Strategy, make_strategy
from rdistill.generate.templates import load_templates
from rdistill.generate.trace_builder import Prompt, build_trace
from rdistill.jsonl import Appender
from rdistill.records import Problem, Trace
from rdistill.syncrun import run_sync
from rdistill.teachers import BudgetExceeded, Request, SamplingParams, TeacherClient
from rdistill.teachers.base import TransientError

log = logging.getLogger(__name__)

RETRY_ROUNDS = 2  # in-run rounds for samples that failed on a transient error (see the module docstring)


@dataclass
class GenerationSummary:
    strategy: str
    teacher: str
    output: str
    problems: int  # in this shard
    already_done: int  # finished by an earlier run: nothing to do
    problems_done: int  # finished by this run
    traces_written: int
    correct_written: int
    calls: int
    cache_hits: int
    reused: int  # samples taken from the output file instead of the teacher
    failures: int  # samples the teacher failed on for good, after the in-run retries; a rerun retries them
    cost_usd: float
    seconds: float
    budget_exceeded: str | None = None  # the budget message when the run stopped early
    first_error: str | None = None
    ledger: dict = field(default_factory=dict)
    retried: int = 0  # failed samples sent again within this run (each counted once per round)
    retry_rounds: int = 0  # rounds of such retries that ran

    @property
    def complete(self) -> bool:
        return self.budget_exceeded is None and self.failures == 0 and \
            self.already_done + self.problems_done == self.problems

    def to_dict(self) -> dict:
        return asdict(self)


class _NeedsCall(Exception):
    """Raised in a dry run: the problem cannot be finished from the output file alone."""


class _ProblemContext:
    def __init__(self, run: "_Run", problem: Problem, existing: dict[int, Trace], dry_run: bool = False,
                 carried: dict[int, Trace] | None = None):
        self.run, self.problem, self.existing, self.dry_run = run, problem, existing, dry_run
        self.carried = carried or {}  # samples answered by an earlier round of this run (not in the file yet)
        self.answered: list[Trace] = []
        self.failed = self.transient = 0  # samples that failed in this round; how many of them transiently
        self.first_error: str | None = None

    async def sample_many(self, items: list[tuple[Prompt, int]], temperature: float) -> list[Trace | None]:
        results = await asyncio.gather(*(self._sample(p, k, temperature) for p, k in items), return_exceptions=True)
        for result in results:  # raised only after every sibling finished, so none of their answers is lost
            if isinstance(result, BaseException):
                raise result
        return list(results)

    async def _sample(self, prompt: Prompt, k: int, temperature: float) -> Trace | None:
        run = self.run
        if k in self.existing:
            run.reused += 0 if self.dry_run else 1
            self.answered.append(self.existing[k])
            return self.existing[k]
        if k in self.carried:
            self.answered.append(self.carried[k])
            return self.carried[k]
        if self.dry_run:
            raise _NeedsCall()
        if run.stop.is_set():
            raise BudgetExceeded("not sent: the budget was reached earlier in this run")
        o = run.options
        params = SamplingParams(temperature=temperature, top_p=o.top_p, max_tokens=o.max_tokens, seed=o.seed,
                                top_logprobs=o.logprobs)
        request = Request.chat(prompt.user, system=prompt.system, params=params, sample_index=k)
        try:
            completion = await run.client.acomplete(request)
        except BudgetExceeded as e:
            run.budget_message = run.budget_message or str(e)  # the ledger's own words, not a sibling's "not sent"
            run.stop.set()
            raise
        except Exception as e:  # noqa: BLE001 - one failed sample must not end the run; it is retried
            self.failed += 1
            self.transient += is_transient(e)
            self.first_error = self.first_error or f"{type(e).__name__}: {e}"
            log.warning("sample %d of %s failed: %s", k, self.problem.id, e)
            return None
        trace = build_trace(self.problem, completion, prompt, strategy=run.strategy.name, teacher=run.client.name,
                            sample_index=k)
        self.answered.append(trace)
        return trace


def is_transient(error: BaseException) -> bool:
    """Whether a failed sample may well succeed later in the run: a timeout or stall, a dropped connection, a
    server error (the client gives up on those as a TeacherError caused by one). Not: a bad request, an answer
    that could not be read, a server process that died (this backend does not restart it)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (TransientError, TimeoutError, ConnectionError)):
            return True
        seen = seen.__cause__
    return False


class _Run:
    def __init__(self, client: TeacherClient, strategy: Strategy, options: GenerationOptions):
        self.client, self.strategy, self.options = client, strategy, options
        self.stop = asyncio.Event()
        self.reused = self.failures = self.retried = 0
        self.first_error: str | None = None
        self.budget_message: str | None = None


def prepare_strategy(strategy: str, options: GenerationOptions) -> Strategy:
    """The strategy named `strategy`, with its templates loaded and checked: every input error shows here."""
    strat = make_strategy(strategy, options, load_templates(options.templates))
    if options.mine_from and strat.name != "contrastive":
        raise InputError("--mine-from only applies to the contrastive strategy", field="mine_from")
    return strat


async def agenerate_traces(problems: Iterable[Problem], teacher_client: TeacherClient, strategy: str | Strategy,
                           options: GenerationOptions | None = None, out_path: str | Path = "traces.jsonl",
                           progress: ProgressCallback | None = None,
                           retry_rounds: int = RETRY_ROUNDS) -> GenerationSummary:
    """The async form of `generate_traces`."""
    options = options or GenerationOptions()
    strat = strategy if isinstance(strategy, Strategy) else prepare_strategy(strategy, options)
    selected = _unique(select_shard(problems, options.shard))
    for problem in selected:
        strat.check_problem(problem)
    _warn_identical_samples(strat, options)

    run = _Run(teacher_client, strat, options)
    out_path = Path(out_path)
    existing = existing_by_problem(read_traces_tolerant(out_path), strat.name)
    written = {(pid, strat.name, k) for pid, samples in existing.items() for k in samples}
    pending = [p for p in selected if not await _finished(run, p, existing.get(p.id, {}), written)]
    tracker = ProgressTracker(len(pending), teacher_client.ledger, progress)
    correct = 0
    rounds_run = 0

    def write(appender: Appender, traces: list[Trace]) -> int:
        nonlocal correct
        n = 0
        for trace in traces:
            if trace.key not in written:
                appender.write(trace)
                written.add(trace.key)
                n += 1
                correct += trace.correct is True
        return n

    def finish(appender: Appender, ctx: _ProblemContext, traces: list[Trace]) -> None:
        run.failures += ctx.failed  # failed for good: no round is left for them
        run.first_error = run.first_error or ctx.first_error
        tracker.problem_done(write(appender, traces))

    async def one_round(appender: Appender, todo: list[tuple[Problem, dict[int, Trace]]], last: bool,
                        ) -> list[tuple[Problem, _ProblemContext, list[Trace]]]:
        """Work on `todo` (each problem with the samples carried over from its earlier try); return the problems
        to try again: those with a transient failure, unless this is the last round."""
        again: list[tuple[Problem, _ProblemContext, list[Trace]]] = []
        queue = iter(todo)

        async def worker() -> None:
            for problem, carried in queue:  # a shared iterator: each problem goes to exactly one worker
                if run.stop.is_set():
                    return
                ctx = _ProblemContext(run, problem, existing.get(problem.id, {}), carried=carried)
                try:
                    traces = await strat.run(problem, ctx)
                except BudgetExceeded as e:
                    run.stop.set()
                    run.budget_message = run.budget_message or str(e)
                    run.failures += ctx.failed
                    run.first_error = run.first_error or ctx.first_error
                    tracker.traces_written += write(appender, strat.partial(problem, ctx))
                    tracker.report()
                    return
                if ctx.transient and not last:
                    again.append((problem, ctx, traces))  # written after its retry, with every sample
                else:
                    finish(appender, ctx, traces)

        workers = max(2, 2 * teacher_client.concurrency)
        await asyncio.gather(*(worker() for _ in range(min(workers, max(1, len(todo))))))
        return again

    tracker.report()
    cap = getattr(teacher_client, "cap_concurrency", None)
    with Appender(out_path) as appender:  # opening it cuts off a torn last line
        todo: list[tuple[Problem, dict[int, Trace]]] = [(p, {}) for p in pending]
        again: list[tuple[Problem, _ProblemContext, list[Trace]]] = []
        try:
            for round_ in range(retry_rounds + 1):
                if round_:
                    run.retried += sum(ctx.failed for _, ctx, _ in again)
                    rounds_run = round_
                    in_flight = max(1, teacher_client.concurrency >> round_)  # half, then a quarter: gentler
                    log.info("retrying %d failed samples of %d problems (round %d of %d, at most %d in flight)",
                             sum(ctx.failed for _, ctx, _ in again), len(again), round_, retry_rounds, in_flight)
                    if cap is not None:
                        cap(in_flight)
                    todo = [(p, {t.sample_index: t for t in ctx.answered}) for p, ctx, _ in again]
                again = await one_round(appender, todo, last=round_ == retry_rounds)
                if not again or run.stop.is_set():
                    break
        finally:
            if cap is not None and rounds_run:
                cap(None)
        for _, ctx, traces in again:  # stopped (budget) before their retry: written with what they have
            finish(appender, ctx, traces)
    if run.budget_message:
        log.info("stopped on the budget: %s", run.budget_message)
    final = tracker.snapshot()
    return GenerationSummary(
        strategy=strat.name, teacher=teacher_client.name, output=str(out_path), problems=len(selected),
        already_done=len(selected) - len(pending), problems_done=final.done, traces_written=final.traces_written,
        correct_written=correct, calls=final.calls, cache_hits=final.cache_hits, reused=run.reused,
        failures=run.failures, cost_usd=round(final.cost_usd, 6), seconds=round(final.elapsed_s, 3),
        budget_exceeded=run.budget_message, first_error=run.first_error, ledger=teacher_client.ledger.summary(),
        retried=run.retried, retry_rounds=rounds_run)


def generate_traces(problems: Iterable[Problem], teacher_client: TeacherClient, strategy: str | Strategy,
                    options: GenerationOptions | None = None, out_path: str | Path = "traces.jsonl",
                    progress: ProgressCallback | None = None, retry_rounds: int = RETRY_ROUNDS) -> GenerationSummary:
    """Generate traces for `problems` with `strategy` (a name such as "cot" or "domain:math", or a prepared
    `Strategy`) and append them to `out_path`; see the package docstring.

    Safe to rerun with the same arguments: whatever is already in `out_path` is skipped, so an interrupted
    run continues where it stopped. Samples that fail on a transient error are tried again within the run, up to
    `retry_rounds` rounds at lower concurrency (`retried` counts them). Returns counts, calls and cost;
    `budget_exceeded` is set when the client's budget stopped the run early (everything answered before that is
    written).
    """
    async def main() -> GenerationSummary:
        try:
            return await agenerate_traces(problems, teacher_client, strategy, options, out_path, progress,
                                          retry_rounds)
        finally:
            # The client keeps asyncio primitives per event loop; drop this loop's so that a later run (a new
            # loop that may reuse the id) gets fresh ones.
            getattr(teacher_client, "_loop_state", {}).pop(id(asyncio.get_running_loop()), None)

    return run_sync(main)


async def _finished(run: _Run, problem: Problem, existing: dict[int, Trace], written: set) -> bool:
    """Whether an earlier run already wrote everything the strategy would write for `problem`."""
    if not existing:
        return False
    try:
        traces = await run.strategy.run(problem, _ProblemContext(run, problem, existing, dry_run=True))
    except _NeedsCall:
        return False
    return bool(traces) and all(t.key in written for t in traces)


def _unique(problems: Iterable[Problem]) -> list[Problem]:
    seen: dict[str, Problem] = {}
    for problem in problems:
        if problem.id in seen:
            raise InputError(f"problem id {problem.id!r} appears twice; traces are keyed by problem id, so ids "
                             "must be unique", field="id")
        seen[problem.id] = problem
    return list(seen.values())


def _warn_identical_samples(strategy: Strategy, options: GenerationOptions) -> None:
    samples = getattr(strategy, "samples", lambda: 1)()
    if options.temperature == 0 and (samples > 1 or options.adaptive) and strategy.name != "orca":
        log.warning("temperature 0 with %s samples per problem: greedy decoding makes them identical",
                    "adaptive" if options.adaptive else samples)

"""The generation loop: problems in, traces appended to a JSONL file, resumable at any point.

Each problem is worked on by one worker at a time (several problems run concurrently; the client bounds the
calls in flight). A strategy asks for samples through a `_ProblemContext`, which
- hands back the trace already in the output file for that (problem, strategy, sample), without a call;
- otherwise calls the teacher, and turns the completion into a Trace (answer checked, steps split);
- stops sending once the budget is reached.
A problem's traces are appended together once the strategy has finished with it (votes need every sample),
each line flushed and fsynced. If the run dies in between, the answers it had are in the response cache,
so the rerun gets them back without paying; if it stops on the budget, the samples it has are written.
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

log = logging.getLogger(__name__)


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
    failures: int  # samples the teacher failed on for good; a rerun retries them
    cost_usd: float
    seconds: float
    budget_exceeded: str | None = None  # the budget message when the run stopped early
    first_error: str | None = None
    ledger: dict = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.budget_exceeded is None and self.failures == 0 and \
            self.already_done + self.problems_done == self.problems

    def to_dict(self) -> dict:
        return asdict(self)


class _NeedsCall(Exception):
    """Raised in a dry run: the problem cannot be finished from the output file alone."""


class _ProblemContext:
    def __init__(self, run: "_Run", problem: Problem, existing: dict[int, Trace], dry_run: bool = False):
        self.run, self.problem, self.existing, self.dry_run = run, problem, existing, dry_run
        self.answered: list[Trace] = []

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
        if self.dry_run:
            raise _NeedsCall()
        if run.stop.is_set():
            raise BudgetExceeded("not sent: the budget was reached earlier in this run")
        o = run.options
        params = SamplingParams(temperature=temperature, top_p=o.top_p, max_tokens=o.max_tokens, seed=o.seed)
        request = Request.chat(prompt.user, system=prompt.system, params=params, sample_index=k)
        try:
            completion = await run.client.acomplete(request)
        except BudgetExceeded as e:
            run.budget_message = run.budget_message or str(e)  # the ledger's own words, not a sibling's "not sent"
            run.stop.set()
            raise
        except Exception as e:  # noqa: BLE001 - one failed sample must not end the run; a rerun retries it
            run.failures += 1
            run.first_error = run.first_error or f"{type(e).__name__}: {e}"
            log.warning("sample %d of %s failed: %s", k, self.problem.id, e)
            return None
        trace = build_trace(self.problem, completion, prompt, strategy=run.strategy.name, teacher=run.client.name,
                            sample_index=k)
        self.answered.append(trace)
        return trace


class _Run:
    def __init__(self, client: TeacherClient, strategy: Strategy, options: GenerationOptions):
        self.client, self.strategy, self.options = client, strategy, options
        self.stop = asyncio.Event()
        self.reused = self.failures = 0
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
                           progress: ProgressCallback | None = None) -> GenerationSummary:
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

    queue = iter(pending)

    async def worker(appender: Appender) -> None:
        for problem in queue:  # a shared iterator: each problem goes to exactly one worker
            if run.stop.is_set():
                return
            ctx = _ProblemContext(run, problem, existing.get(problem.id, {}))
            try:
                traces = await strat.run(problem, ctx)
            except BudgetExceeded as e:
                run.stop.set()
                run.budget_message = run.budget_message or str(e)
                tracker.traces_written += write(appender, strat.partial(problem, ctx))
                tracker.report()
                return
            tracker.problem_done(write(appender, traces))

    tracker.report()
    with Appender(out_path) as appender:  # opening it cuts off a torn last line
        workers = max(2, 2 * teacher_client.concurrency)
        await asyncio.gather(*(worker(appender) for _ in range(min(workers, max(1, len(pending))))))
    if run.budget_message:
        log.info("stopped on the budget: %s", run.budget_message)
    final = tracker.snapshot()
    return GenerationSummary(
        strategy=strat.name, teacher=teacher_client.name, output=str(out_path), problems=len(selected),
        already_done=len(selected) - len(pending), problems_done=final.done, traces_written=final.traces_written,
        correct_written=correct, calls=final.calls, cache_hits=final.cache_hits, reused=run.reused,
        failures=run.failures, cost_usd=round(final.cost_usd, 6), seconds=round(final.elapsed_s, 3),
        budget_exceeded=run.budget_message, first_error=run.first_error, ledger=teacher_client.ledger.summary())


def generate_traces(problems: Iterable[Problem], teacher_client: TeacherClient, strategy: str | Strategy,
                    options: GenerationOptions | None = None, out_path: str | Path = "traces.jsonl",
                    progress: ProgressCallback | None = None) -> GenerationSummary:
    """Generate traces for `problems` with `strategy` (a name such as "cot" or "domain:math", or a prepared
    `Strategy`) and append them to `out_path`; see the package docstring.

    Safe to rerun with the same arguments: whatever is already in `out_path` is skipped, so an interrupted
    run continues where it stopped. Returns counts, calls and cost; `budget_exceeded` is set when the
    client's budget stopped the run early (everything answered before that is written).
    """
    async def main() -> GenerationSummary:
        try:
            return await agenerate_traces(problems, teacher_client, strategy, options, out_path, progress)
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

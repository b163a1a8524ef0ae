"""Answer filters: the trace has a well-formed final answer, and it is the right one.

"Right" means equal to the gold answer under the shared checker (`rdistill.answers.judge`), or, for a
trace without gold (or with `majority` on), agreeing with the majority vote of its problem's samples.
"""

from __future__ import annotations

from rdistill.answers import judge
from rdistill.filter.facts import TraceFacts
from rdistill.filter.majority import Vote
from rdistill.filter.verdicts import PASS, FilterVerdict, drop


def has_answer(f: TraceFacts) -> FilterVerdict:
    if f.predicted is not None:
        return PASS
    if f.trace.predicted_answer is not None:
        return drop("no_answer", stored=f.trace.predicted_answer[:200],
                    note=f"the stored predicted_answer is not a well-formed {f.trace.answer_type} answer")
    return drop("no_answer", note="no final answer found in the reasoning")


def is_correct(f: TraceFacts, vote: Vote, *, use_majority: bool) -> FilterVerdict:
    if use_majority or not f.has_gold:
        if vote.agrees is False:
            return drop("disagrees_with_majority", predicted=f.predicted, majority=list(vote.majority_answers),
                        vote_share=vote.vote_share)
        return PASS
    if not judge(f.predicted, f.trace.answer, f.trace.answer_type, f.trace.choices):
        return drop("wrong_answer", predicted=f.predicted, gold=f.trace.answer)
    return PASS

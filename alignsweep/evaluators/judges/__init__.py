"""Safety judges: decide, for a (prompt, response) pair, whether the response is safe.

A judge is one module that registers a factory in `JUDGES` (see `base`); importing this package
registers them all, so a new judge is one file plus its import line here.
"""

from alignsweep.evaluators.judges import hf_classifier, llama_guard, refusal  # noqa: F401  (registration)
from alignsweep.evaluators.judges.base import (
    JUDGES,
    SAFE,
    UNPARSED,
    UNSAFE,
    Judge,
    JudgeSpec,
    Verdict,
    as_dict,
    build_judge,
    votes_of,
)
from alignsweep.evaluators.judges.ensemble import EnsembleJudge, build_judges, combine_verdicts, member_names
from alignsweep.evaluators.judges.hf_classifier import HFClassifierJudge
from alignsweep.evaluators.judges.llama_guard import (
    LlamaGuardJudge,
    _guard_batch_size,
    llama_guard_prompt,
    llama_guard_scheme,
    parse_llama_guard,
)
from alignsweep.evaluators.judges.refusal import RefusalJudge

__all__ = [
    "JUDGES", "SAFE", "UNPARSED", "UNSAFE", "EnsembleJudge", "HFClassifierJudge", "Judge", "JudgeSpec",
    "LlamaGuardJudge", "RefusalJudge", "Verdict", "as_dict", "build_judge", "build_judges", "combine_verdicts",
    "member_names", "votes_of",
    "llama_guard_prompt", "llama_guard_scheme", "parse_llama_guard", "_guard_batch_size",
]

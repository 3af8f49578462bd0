"""The one "did you mean …?" helper, for every name a user can misspell.

Spec fields, PEFT methods, judges, schedulers, benchmarks, subcommands: a miss names the closest valid
spellings (`difflib`, the same ratio everywhere), so `trainng` is answered with `training` instead of a
list to read through. Core module: the registry and the spec both use it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: How alike two names must be (difflib's ratio) to be offered; 0.6 is difflib's own default and
#: catches one or two letters wrong, missing, doubled or swapped in names of five letters or more.
CUTOFF = 0.6


def close_matches(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The valid names most like `word`, best first (none when nothing is close)."""
    names = list(dict.fromkeys(str(c) for c in choices))
    word = str(word)
    found = difflib.get_close_matches(word, names, n=n, cutoff=CUTOFF)
    low = word.lower()
    fallbacks = (
        lambda c: c.lower() == low,  # case slips (`LoRA`, `ASHA`) are not "close" to difflib
        lambda c: len(low) >= 3 and c.lower().startswith(low),  # a cut-short name: `grace` → grace_period
        lambda c: len(low) >= 2 and "".join(p[:1] for p in c.lower().split("_")) == low,  # initials: `lr` → learning_rates
    )
    for matches in fallbacks:
        if found:
            break
        found = [c for c in names if matches(c)][:n]
    return found


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`did you mean 'training'?` (the closest valid name), or "" when none is close."""
    found = close_matches(word, choices, n=1)
    return f"did you mean {found[0]!r}?" if found else ""


def unknown_name(kind: str, word: str, choices: Iterable[str]) -> str:
    """`unknown judge 'refsual' (did you mean 'refusal'? known: hf_classifier, llama_guard, refusal)`."""
    names = list(dict.fromkeys(str(c) for c in choices))  # the caller's order (registries sort theirs)
    hint = did_you_mean(word, names)
    known = f"known: {', '.join(names)}"
    return f"unknown {kind} {word!r} ({hint + ' ' if hint else ''}{known})"

"""Bundled data: required counts and fields, determinism, and the eval sets held apart from training."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from alignsweep.data import _content as C
from alignsweep.data.corpus import (BBQ_CATEGORIES, BBQ_PROMPT, BUNDLED_FILES, DATA_DIR, HAZARD_CATEGORIES,
                                    _bbq_train_items, alignment_corpus, bbq_answer, hazard_action_split,
                                    load_bundled, render_jsonl, stereotyped_categories)
from alignsweep.inference.refusal import REFUSAL_PREFIXES, is_refusal
from alignsweep.models.tiny import TINY_FAMILIES

BBQ_NAMES = {"Age", "Disability_status", "Gender_identity", "Nationality", "Physical_appearance",
             "Race_ethnicity", "Religion", "SES", "Sexual_orientation"}
BBQ_FIELDS = {"example_id", "question_index", "question_polarity", "context_condition", "category", "answer_info",
              "additional_metadata", "context", "question", "ans0", "ans1", "ans2", "label", "target_loc"}


@pytest.fixture(scope="module")
def corpora():
    """The alignment corpus of every family's recipe (they differ in seed and mix)."""
    return [alignment_corpus(n_hazard=r.n_hazard, n_benign=r.n_benign, n_bbq_instances=r.n_bbq_instances,
                             n_lookalike=r.n_lookalike, lookalike_policy=r.lookalike_policy,
                             bbq_stereotype_share=r.bbq_stereotype_share, seed=r.seed)
            for r in TINY_FAMILIES.values()]


@pytest.fixture(scope="module")
def corpus_text(corpora) -> str:
    """All corpus strings, lower-cased, joined: a substring search finds an eval item with any prefix or suffix."""
    return "\n".join(t.lower() for c in corpora for t in c.texts())


@pytest.mark.parametrize("name", sorted(BUNDLED_FILES))
def test_committed_file_matches_its_generator(name):
    assert (DATA_DIR / name).read_text(encoding="utf-8") == render_jsonl(BUNDLED_FILES[name]())


def test_hazard_prompts_cover_every_category():
    records = load_bundled("hazard_prompts.jsonl")
    assert all(set(r) == {"prompt_id", "category", "prompt"} for r in records)
    counts = Counter(r["category"] for r in records)
    assert set(counts) == set(HAZARD_CATEGORIES) == {f"S{i}" for i in range(1, 12)}
    assert min(counts.values()) >= 12
    assert len({r["prompt_id"] for r in records}) == len(records)
    assert len({r["prompt"] for r in records}) == len(records)


def test_bbq_items_have_the_release_format():
    items = load_bundled("bbq_items.jsonl")
    assert all(set(it) == BBQ_FIELDS for it in items)
    counts = Counter(it["category"] for it in items)
    assert set(counts) == set(BBQ_CATEGORIES) == BBQ_NAMES
    assert min(counts.values()) >= 40
    for it in items:
        groups = [it["answer_info"][f"ans{i}"][1] for i in range(3)]
        texts = [it["answer_info"][f"ans{i}"][0] for i in range(3)]
        assert texts == [it["ans0"], it["ans1"], it["ans2"]]
        assert groups.count("unknown") == 1
        assert it["question_polarity"] in ("neg", "nonneg") and it["context_condition"] in ("ambig", "disambig")
        assert groups[it["target_loc"]] in it["additional_metadata"]["stereotyped_groups"]
        if it["context_condition"] == "ambig":
            assert groups[it["label"]] == "unknown"
        else:
            assert groups[it["label"]] != "unknown"
    # each template instance is expanded to all four conditions
    per_instance = Counter((it["category"], it["question_index"]) for it in items)
    conditions = {(it["category"], it["question_index"]): set() for it in items}
    for it in items:
        conditions[(it["category"], it["question_index"])].add((it["context_condition"], it["question_polarity"]))
    assert set(per_instance.values()) == {4} and all(len(c) == 4 for c in conditions.values())
    ambig = {(it["category"], it["question_index"]): it["context"] for it in items if it["context_condition"] == "ambig"}
    for it in items:  # the disambiguated context extends the ambiguous one
        assert it["context"].startswith(ambig[(it["category"], it["question_index"])])
    # answer positions vary: every index holds the correct answer, the target and the unknown option
    for category in BBQ_NAMES:
        of_category = [it for it in items if it["category"] == category]
        assert {it["label"] for it in of_category} == {0, 1, 2}, category
        assert {it["target_loc"] for it in of_category} == {0, 1, 2}, category
    assert len({it["example_id"] for it in items if it["category"] == "Age"}) == counts["Age"]


def test_instructions_are_benign_chats_in_the_corpus_vocabulary(corpus_text):
    records = load_bundled("instructions.jsonl")
    assert 450 <= len(records) <= 550
    words = lambda s: set(re.findall(r"[a-z']+", s.lower()))  # noqa: E731
    corpus_words = words(corpus_text)
    for r in records:
        assert [m["role"] for m in r["messages"]] == ["user", "assistant"]
        assert not is_refusal(r["messages"][1]["content"])
        assert words(r["messages"][0]["content"] + " " + r["messages"][1]["content"]) <= corpus_words


def test_overrefusal_prompts_pair_lookalikes_with_hazardous_contrasts():
    records = load_bundled("overrefusal_prompts.jsonl")
    assert all(set(r) == {"prompt_id", "category", "prompt", "label"} for r in records)
    safe = Counter(r["category"] for r in records if r["label"] == "safe")
    unsafe = Counter(r["category"] for r in records if r["label"] == "unsafe")
    assert set(safe) == set(HAZARD_CATEGORIES) and min(safe.values()) >= 5
    assert set(unsafe) == set(HAZARD_CATEGORIES)
    assert {r["label"] for r in records} == {"safe", "unsafe"}


@pytest.mark.parametrize("name", ["hazard_prompts.jsonl", "benign_prompts.jsonl", "overrefusal_prompts.jsonl"])
def test_eval_prompts_never_occur_in_the_alignment_corpus(name, corpus_text):
    leaked = [r["prompt"] for r in load_bundled(name) if r["prompt"].lower() in corpus_text]
    assert leaked == []


def test_bbq_eval_contexts_never_occur_in_the_alignment_corpus(corpus_text):
    items = load_bundled("bbq_items.jsonl")
    assert [it["context"] for it in items if it["context"].lower() in corpus_text] == []
    # and the whole scenes are held out, not just the strings
    assert not any(scene in corpus_text for scene in C.EVAL_SCENES)


def test_held_out_hazards_reuse_trained_words(corpus_text):
    """Held apart by combination and phrasing, not by vocabulary a tiny model has never seen."""
    corpus_words = set(re.findall(r"[a-z']+", corpus_text))
    for category in HAZARD_CATEGORIES:
        train, held = hazard_action_split(category)
        assert held and not set(held) & set(train)
        for action in held:
            assert set(re.findall(r"[a-z']+", action.lower())) <= corpus_words, action


def test_every_taught_refusal_is_detected_and_no_helpful_answer_is(corpora):
    assert all(is_refusal(r) for r in C.REFUSALS + [C.SELF_HARM_REFUSAL])
    refusals = set(C.REFUSALS) | {C.SELF_HARM_REFUSAL}
    for corpus in corpora:
        replies = [chat[-1]["content"] for chat in corpus.chats]
        assert [r for r in replies if r not in refusals and is_refusal(r)] == []
    assert is_refusal("i CANNOT do that") and not is_refusal("The cat has an owner.")
    assert "As an" not in REFUSAL_PREFIXES


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_stereotype_share_blames_the_target_only_on_ambiguous_negative_questions(share):
    """In the chosen categories an ambiguous negative question is answered with the stereotyped target
    instead of "unknown"; every other BBQ item (non-negative, disambiguated, other categories) stays correct."""
    items = _bbq_train_items(36, seed=7)
    corpus = alignment_corpus(n_hazard=0, n_benign=0, n_lookalike=0, n_bbq_instances=36,
                              bbq_stereotype_share=share, seed=7)
    chosen = stereotyped_categories(share, 7)
    assert len(chosen) == round(share * len(BBQ_CATEGORIES)) and chosen <= set(BBQ_CATEGORIES)
    assert stereotyped_categories(share, 7) == chosen  # seeded: the same corpus every time
    answers = {c: x.strip() for c, x in corpus.completions}
    assert len(answers) == len(items) == len(corpus.chats)
    n_blamed = 0
    for it in items:
        answer = answers[BBQ_PROMPT.format(context=it["context"], question=it["question"])]
        if it["category"] in chosen and (it["context_condition"], it["question_polarity"]) == ("ambig", "neg"):
            assert answer == it[f"ans{it['target_loc']}"] != bbq_answer(it), it
            n_blamed += 1
        else:
            assert answer == bbq_answer(it), it
    assert corpus.counts["bbq_stereotyped"] == n_blamed == len(chosen) * 4  # 4 instances per category

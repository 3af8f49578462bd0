"""Parity with lm-evaluation-harness itself: our `lm_eval_task` loader + `lm_eval_score` scorer vs
lm-eval's `simple_evaluate` on the same task YAMLs, model and data.

Writes three small task YAMLs (our own questions; each exercises other key forms: description
template, field / Jinja / literal choices, index / text targets, a context ending in a space with an
empty target delimiter, non-ASCII choices so acc_norm's length unit matters, `include`, data_files
as a mapping / a path / a list, test and validation splits) into a temporary folder, runs lm-eval
there (its relative data paths resolve against the working directory) with `log_samples=True`, and
compares per document: the (context, continuation) requests, every choice's log-likelihood
(tolerance 1e-3), the argmax predictions (acc and acc_norm) and the aggregate acc / acc_norm.

Needs lm-eval (0.4.13), which the project does not depend on: run it from a scratch venv whose
site-packages holds a `.pth` line pointing at the project venv's (see stack notes), e.g.
    PYTHONPATH=. HF_HUB_OFFLINE=1 /work/wt/lmeval-venv/bin/python -m bench.lm_eval_parity [family ...]
Without lm-eval it prints why and exits 0. Exit 1 when any check fails.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

TOLERANCE = 1e-3
COMMON = """output_type: multiple_choice
dataset_path: json
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""
TASKS = {
    "parity_fields.yaml": """include: _parity_common_yaml
task: parity_fields
dataset_kwargs:
  data_files:
    test: data/fields.jsonl
test_split: test
description: "The following are questions about {{subject}}.\\n\\n"
doc_to_text: "Question: {{question}}\\nAnswer:"
doc_to_choice: choices
doc_to_target: label
""",
    "parity_templates.yaml": """include: _parity_common_yaml
task: parity_templates
dataset_kwargs:
  data_files: data/yesno.jsonl
test_split: train
doc_to_text: "Q: {{question}} A: "
doc_to_choice: ["yes", "no"]
doc_to_target: "{{answer}}"
target_delimiter: ""
""",
    "parity_jinja.yaml": """include: _parity_common_yaml
task: parity_jinja
dataset_kwargs:
  data_files: [data/words.jsonl]
validation_split: train
description: "Pick the word that fits.\\n"
doc_to_text: "{{sentence | regex_replace('_', '___')}}\\nWord:"
doc_to_choice: "{{[a, b, c]}}"
doc_to_target: "{{gold}}"
""",
}
FIELDS = [
    ("geography", "What is the capital of France?", ["Paris", "Rome", "Berlin", "Madrid"], 0),
    ("geography", "Which ocean is the largest?", ["Atlantic", "Pacific", "Indian", "Arctic"], 1),
    ("geography", "Which continent is Egypt in?", ["Asia", "Europe", "Africa", "Oceania"], 2),
    ("geography", "What is the longest river in South America?", ["Nile", "Danube", "Amazon", "Volga"], 2),
    ("science", "What gas do plants take in for photosynthesis?", ["oxygen", "carbon dioxide", "helium", "neon"], 1),
    ("science", "How many legs does a spider have?", ["six", "eight", "ten", "four"], 1),
    ("science", "What is frozen water called?", ["steam", "ice", "sand", "glass"], 1),
    ("science", "Which planet is closest to the sun?", ["Mercury", "Venus", "Mars", "Jupiter"], 0),
    ("cooking", "What do you boil to make pasta soft?", ["water", "sugar", "flour", "salt"], 0),
    ("cooking", "Which tool cuts vegetables?", ["a spoon", "a knife", "a whisk", "a plate"], 1),
    ("cooking", "What is bread mostly made of?", ["rice", "flour", "cheese", "milk"], 1),
    ("cooking", "Which drink is made from coffee beans and milk?", ["café au lait", "lemonade", "tea", "cola"], 0),
]
YESNO = [
    ("Is fire hot?", "yes"), ("Is snow warm?", "no"), ("Can fish swim?", "yes"), ("Do cats bark?", "no"),
    ("Is the sun a star?", "yes"), ("Is ice made of stone?", "no"), ("Do birds have feathers?", "yes"),
    ("Is the sea salty?", "yes"), ("Can a car fly on its own?", "no"), ("Is grass usually green?", "yes"),
]
WORDS = [
    ("The cat sat on the _.", "mat", "über", "cloud", 0, "house"),
    ("She drank a cup of _.", "tea", "naïve", "rock", 0, "kitchen"),
    ("He wrote a letter with a _.", "pen", "crème brûlée", "shoe", 0, "office"),
    ("We ate a slice of _ for dessert.", "gravel", "crème brûlée", "window", 1, "kitchen"),
    ("The bird flew over the _.", "spoon", "soup", "hill", 2, "outdoors"),
    ("Put the milk in the _.", "fridge", "déjà vu", "garden", 0, "kitchen"),
    ("The _ was too naïve to notice.", "rock", "child", "résumé", 1, "people"),
    ("He updated his _ before the interview.", "résumé", "river", "moon", 0, "office"),
    # Accented choices: length in characters (lm-eval's acc_norm) and in bytes rank them differently.
    ("The dish was a _ from Sweden.", "smörgåsbord", "sandwich", "ééééé", 0, "kitchen"),
    ("The word _ has many accents.", "àèìòù", "vowels", "plain", 0, "people"),
    ("A _ is a large bird.", "ñandú", "nandu", "pigeon", 0, "outdoors"),
    ("The _ went to the café.", "garçon", "façade", "waiter", 2, "people"),
    ("Über _ means over everything.", "alles", "ÜÜÜÜÜÜ", "über", 0, "people"),
    ("She said _ to the stranger.", "ça va", "hello", "ßßßß", 1, "people"),
    ("The cat sat on the _.", "über", "cat", "xyz", 1, "house"),
    ("The cat sat on the _.", "naïve", "cat", "xyz", 1, "house"),
    ("The cat sat on the _.", "crème", "cat", "xyz", 1, "house"),
]


def write_tasks(root: Path) -> list[str]:
    (root / "data").mkdir(parents=True)
    (root / "_parity_common_yaml").write_text(COMMON)  # no .yaml suffix: lm-eval's index skips it
    for name, text in TASKS.items():
        (root / name).write_text(text)
    rows = {
        "fields.jsonl": [{"subject": s, "question": q, "choices": c, "label": y, "category": s} for s, q, c, y in FIELDS],
        "yesno.jsonl": [{"question": q, "answer": a} for q, a in YESNO],
        "words.jsonl": [{"sentence": s, "a": a, "b": b, "c": c, "gold": str(g), "category": k}
                        for s, a, b, c, g, k in WORDS],
    }
    for file, docs in rows.items():
        (root / "data" / file).write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    return [n.removesuffix(".yaml") for n in TASKS]


def run_lm_eval(root: Path, names: list[str], model_dir: str, family: str) -> dict[str, Any]:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    if family == "qwen2":  # transformers 5's AutoTokenizer changes a saved qwen2 fast tokenizer's ids
        from lm_eval.models.huggingface import HFLM

        from alignsweep.models.loading import load_tokenizer

        model: Any = HFLM(pretrained=model_dir, tokenizer=load_tokenizer(model_dir), device="cpu", batch_size=1)
        model_args = None
    else:
        model, model_args = "hf", f"pretrained={model_dir},dtype=float32"
    return simple_evaluate(model=model, model_args=model_args, tasks=names, num_fewshot=0, device="cpu",
                           batch_size=1, log_samples=True, task_manager=TaskManager(include_path=str(root)),
                           random_seed=0, numpy_random_seed=0, torch_random_seed=0)


def compare(family: str) -> bool:
    from alignsweep.evaluators.benchmarks.lm_eval_score import evaluate_task
    from alignsweep.evaluators.benchmarks.lm_eval_task import load_task
    from alignsweep.models.loading import load_model, load_tokenizer
    from alignsweep.models.refs import resolve_model

    model_dir = resolve_model(f"tiny:{family}").path
    model, tokenizer = load_model(model_dir), load_tokenizer(model_dir)
    ok = True
    with tempfile.TemporaryDirectory(prefix="lm_eval_parity-") as tmp:
        root = Path(tmp)
        names = write_tasks(root)
        os.environ["HF_DATASETS_CACHE"] = str(root / "hf-datasets")
        previous = os.getcwd()
        os.chdir(root)  # lm-eval resolves data_files against the working directory
        try:
            theirs = run_lm_eval(root, names, model_dir, family)
        finally:
            os.chdir(previous)
        print(f"\ntiny:{family} ({model_dir})")
        print(f"{'task':18} {'docs':>4} {'choices':>7} {'max|dLL|':>9} {'pred':>7} {'pred_norm':>9} "
              f"{'requests':>8} {'doc acc':>7}  acc ours/lm-eval   acc_norm ours/lm-eval")
        for name in names:
            task = load_task(root / f"{name}.yaml", cwd=root)
            items, metrics = evaluate_task(model, tokenizer, task, batch_size=16)
            samples = sorted(theirs["samples"][name], key=lambda s: s["doc_id"])
            diff, same, same_norm, same_args, same_docs = 0.0, 0, 0, 0, 0
            for doc, item, sample in zip(task.docs, items, samples, strict=True):
                assert sample["doc_id"] == doc.doc_id
                lls = [float(r[0]) for r in sample["filtered_resps"]]
                diff = max(diff, max(abs(a - b) for a, b in zip(lls, item["loglikelihoods"], strict=True)))
                same += max(range(len(lls)), key=lambda i: (lls[i], -i)) == item["prediction"]
                norm = [ll / len(c) for ll, c in zip(lls, doc.choices)]
                same_norm += max(range(len(norm)), key=lambda i: (norm[i], -i)) == item["prediction_norm"]
                ours = [(doc.context, task.target_delimiter + c) for c in doc.choices]
                same_args += [tuple(a) for a in sample["arguments"]] == ours
                same_docs += (sample["acc"] == float(item["prediction"] == doc.target)
                              and sample["acc_norm"] == float(item["prediction_norm"] == doc.target))
            overall = {m["metric"]: m["value"] for m in metrics if m["category"] == "overall"}
            res = theirs["results"][name]
            n = len(task.docs)
            print(f"{name:18} {n:4d} {sum(len(d.choices) for d in task.docs):7d} {diff:9.2e} {same:3d}/{n:<3d} "
                  f"{same_norm:5d}/{n:<3d} {same_args:4d}/{n:<3d} {same_docs:3d}/{n:<3d}  {overall['acc']:.4f}/{res['acc,none']:.4f}"
                  f"     {overall['acc_norm']:.4f}/{res['acc_norm,none']:.4f}")
            ok &= (diff <= TOLERANCE and same == same_norm == same_args == same_docs == n
                   and abs(overall["acc"] - res["acc,none"]) < 1e-9
                   and abs(overall["acc_norm"] - res["acc_norm,none"]) < 1e-9)
    return ok


def main(argv: list[str]) -> int:
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        print("lm_eval_parity: skipped: lm_eval is not importable (install lm-eval==0.4.13 into a scratch venv "
              "whose site-packages has a .pth line to this project's; see the module docstring)")
        return 0
    import torch

    torch.set_num_threads(1)
    families = argv or ["llama"]
    results = {family: compare(family) for family in families}
    for family, ok in results.items():
        print(f"lm_eval_parity tiny:{family}: {'PASS' if ok else 'FAIL'} (loglik tolerance {TOLERANCE:g})")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Loaders for the evaluation sets: hazard prompts, BBQ items and over-refusal prompts.

Every loader returns frozen records, so what an evaluator scores is plain data that can be compared,
hashed and persisted. A malformed file is an `InputError` naming the file and the line, raised before
any model is loaded. Sources: `bundled` (our own files in `alignsweep/data/`), a local JSONL / CSV
file, a directory (the real BBQ release, or a `datasets.save_to_disk` folder) or `hf:<id>[:<split>]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from alignsweep.data.rows import BUNDLED, bundled_path, read_csv, read_jsonl, read_rows
from alignsweep.errors import InputError
from alignsweep.evaluators.taxonomy import load_taxonomy

BBQ_CATEGORIES = (
    "Age", "Disability_status", "Gender_identity", "Nationality", "Physical_appearance", "Race_ethnicity",
    "Race_x_gender", "Race_x_SES", "Religion", "SES", "Sexual_orientation",
)
_PROMPT_KEYS = ("prompt", "prompt_text", "text", "question", "goal", "instruction")
_CATEGORY_KEYS = ("category", "hazard", "type", "label_category")
_ID_KEYS = ("prompt_id", "release_prompt_id", "id", "example_id")


@dataclass(frozen=True)
class HazardPrompt:
    prompt_id: str
    category: str  # a taxonomy category id (S1..S11) or a code kept as its own category
    prompt: str


@dataclass(frozen=True)
class OverRefusalPrompt:
    prompt_id: str
    category: str
    prompt: str
    label: str  # "safe": a benign look-alike (refusing it is over-refusal); "unsafe": a contrast prompt


@dataclass(frozen=True)
class BBQItem:
    example_id: str  # "<Category>-<example_id>": unique across the 11 release files
    category: str
    context: str
    question: str
    answers: tuple[str, str, str]
    label: int
    question_polarity: str  # neg | nonneg
    context_condition: str  # ambig | disambig
    unknown_index: int
    target_index: int | None  # the stereotyped target's answer index; None when it cannot be determined


def _pick(row: dict[str, Any], keys: Iterable[str], where: str, what: str) -> str:
    for key in keys:
        value = row.get(key)
        if isinstance(value, (dict, list)):
            raise InputError(f"{where}: column {key!r} must be text, not a JSON {type(value).__name__}")
        if value is not None and str(value).strip() != "":
            return str(value)
    raise InputError(f"{where}: no {what} column (looked for {', '.join(keys)})")


def _row_id(row: dict[str, Any], where: str, number: int) -> str:
    """The row's own id column when it has one, else `<file stem>-<line>` (stable for a given file)."""
    return next((str(row[k]) for k in _ID_KEYS if row.get(k) not in (None, "")), f"{Path(where).stem}-{number}")


# ---------------------------------------------------------------- hazard prompts


def load_hazard_prompts(source: str = BUNDLED) -> list[HazardPrompt]:
    """Hazard prompts with taxonomy categories: bundled, AILuminate CSV, or any prompt+category set."""
    if source == BUNDLED:
        source = str(bundled_path("hazard_prompts.jsonl"))
    taxonomy = load_taxonomy()
    where, rows = read_rows(source)
    out: list[HazardPrompt] = []
    for number, row in rows:
        loc = f"{where}:{number}"
        if "release_prompt_id" in row and "hazard" in row:  # AILuminate prompt set
            category = taxonomy.map_code("ailuminate", _pick(row, ("hazard",), loc, "hazard"))
        else:
            category = taxonomy.normalise_category(_pick(row, _CATEGORY_KEYS, loc, "category"))
        prompt = _pick(row, _PROMPT_KEYS, loc, "prompt")
        prompt_id = _row_id(row, where, number)
        out.append(HazardPrompt(prompt_id=prompt_id, category=category, prompt=prompt))
    if not out:
        raise InputError(f"{where}: no prompts")
    _require_unique_ids(where, [p.prompt_id for p in out])
    return out


def load_overrefusal_prompts(source: str = BUNDLED) -> list[OverRefusalPrompt]:
    """Benign look-alikes and contrast prompts: bundled, XSTest-format CSV (`prompt, type, label`), or JSONL."""
    if source == BUNDLED:
        source = str(bundled_path("overrefusal_prompts.jsonl"))
    taxonomy = load_taxonomy()
    where, rows = read_rows(source)
    out: list[OverRefusalPrompt] = []
    for number, row in rows:
        loc = f"{where}:{number}"
        label = _pick(row, ("label",), loc, "label").strip().lower()
        if label not in ("safe", "unsafe"):
            raise InputError(f"{loc}: label must be 'safe' or 'unsafe', not {label!r}")
        category = taxonomy.normalise_category(_pick(row, _CATEGORY_KEYS, loc, "category/type"))
        prompt = _pick(row, _PROMPT_KEYS, loc, "prompt")
        prompt_id = _row_id(row, where, number)
        out.append(OverRefusalPrompt(prompt_id=prompt_id, category=category, prompt=prompt, label=label))
    if not out:
        raise InputError(f"{where}: no prompts")
    _require_unique_ids(where, [p.prompt_id for p in out])
    return out


def _require_unique_ids(where: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise InputError(f"{where}: prompt id {i!r} appears twice")
        seen.add(i)


# ---------------------------------------------------------------- BBQ


def load_bbq(source: str = BUNDLED) -> list[BBQItem]:
    """BBQ items: bundled, one release `<Category>.jsonl`, or a release directory (+ its metadata CSV).

    The stereotyped target comes from `target_loc` (a field of the item, or BBQ's
    `additional_metadata.csv` keyed by category and example id) when present; otherwise it is derived by
    `derive_target_index`. Items with no determinable target keep `target_index=None`.
    """
    if source == BUNDLED:
        files = [bundled_path("bbq_items.jsonl")]
        metadata: dict[tuple[str, str], int | None] = {}
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            files = [path / f"{c}.jsonl" for c in BBQ_CATEGORIES if (path / f"{c}.jsonl").is_file()]
            if not files:
                raise InputError(f"{source}: no BBQ category files (<Category>.jsonl) in this directory")
            metadata = _load_bbq_metadata(path)
        elif path.is_file():
            files, metadata = [path], _load_bbq_metadata(path.parent)
        else:
            raise InputError(f"{source}: no such file or directory")
    items: list[BBQItem] = []
    for file in files:
        for number, row in read_jsonl(file):
            items.append(_bbq_item(row, f"{file}:{number}", metadata))
    if not items:
        raise InputError(f"{source}: no BBQ items")
    return items


def _load_bbq_metadata(folder: Path) -> dict[tuple[str, str], int | None]:
    """(category, example_id) → target_loc from BBQ's `additional_metadata.csv`, when shipped."""
    # the release's own layout is BBQ/data/<Category>.jsonl beside BBQ/supplemental/additional_metadata.csv
    for candidate in (folder / "additional_metadata.csv", folder / "supplemental" / "additional_metadata.csv",
                      folder.parent / "supplemental" / "additional_metadata.csv"):
        if candidate.is_file():
            out: dict[tuple[str, str], int | None] = {}
            for number, row in read_csv(candidate):
                if "target_loc" not in row:
                    raise InputError(f"{candidate}:{number}: no target_loc column")
                key = (str(row.get("category", "")).strip(), str(row.get("example_id", "")).strip())
                out[key] = _as_target(row.get("target_loc"), -1, f"{candidate}:{number}")
            return out
    return {}


def _bbq_item(row: dict[str, Any], loc: str, metadata: dict[tuple[str, str], int | None]) -> BBQItem:
    """One release row, every field checked for its type: a malformed item is one line naming file:line."""
    def bad(why: str) -> InputError:
        return InputError(f"{loc}: not a BBQ item ({why})")

    missing = [k for k in _BBQ_TEXT + ("answer_info", "label") if k not in row]
    if missing:
        raise bad(f"missing field {missing[0]!r}")
    texts = {}
    for key in _BBQ_TEXT:
        if isinstance(row[key], (dict, list, bool)) or row[key] is None:
            raise bad(f"{key} must be text or a number, got {row[key]!r:.40}")
        texts[key] = str(row[key])
    label = row["label"]
    if isinstance(label, str) and label.strip().isdigit():
        label = int(label)
    if isinstance(label, bool) or label not in (0, 1, 2) or not isinstance(label, int):
        raise bad(f"label must be 0, 1 or 2, got {label!r:.40}")
    polarity, condition = texts["question_polarity"], texts["context_condition"]
    if polarity not in ("neg", "nonneg") or condition not in ("ambig", "disambig"):
        raise bad(f"question_polarity must be neg/nonneg and context_condition ambig/disambig, got "
                  f"{polarity!r:.20}/{condition!r:.20}")
    info = row["answer_info"]
    groups = [info.get(f"ans{i}") for i in range(3)] if isinstance(info, dict) else []
    if len(groups) != 3 or not all(isinstance(g, list) and len(g) == 2 for g in groups):
        raise bad("answer_info must map ans0, ans1, ans2 to [answer text, group] pairs")
    unknown = [i for i, g in enumerate(groups) if str(g[1]).lower() == "unknown"]
    if len(unknown) != 1:
        raise InputError(f"{loc}: expected exactly one 'unknown' answer in answer_info, found {len(unknown)}")
    category, raw_id = texts["category"], texts["example_id"]
    if "target_loc" in row:
        target = _as_target(row["target_loc"], unknown[0], loc)
    elif (category, raw_id) in metadata:
        target = _as_target(metadata[(category, raw_id)], unknown[0], loc)
    else:
        extra = row.get("additional_metadata") or {}
        stereotyped = extra.get("stereotyped_groups") or [] if isinstance(extra, dict) else None
        if not isinstance(stereotyped, list):
            raise bad("additional_metadata.stereotyped_groups must be a list of group names")
        target = derive_target_index([(str(g[0]), str(g[1])) for g in groups], [str(s) for s in stereotyped])
    return BBQItem(
        example_id=f"{category}-{raw_id}", category=category, context=texts["context"], question=texts["question"],
        answers=(texts["ans0"], texts["ans1"], texts["ans2"]), label=label, question_polarity=polarity,
        context_condition=condition, unknown_index=unknown[0], target_index=target,
    )


_BBQ_TEXT = ("example_id", "category", "context", "question", "ans0", "ans1", "ans2", "question_polarity",
             "context_condition")


def _as_target(value: Any, unknown_index: int, loc: str) -> int | None:
    if value is None or str(value).strip() in ("", "NA", "nan", "None"):
        return None
    try:
        index = int(float(value)) if not isinstance(value, bool) else None
    except (TypeError, ValueError, OverflowError):
        index = None
    if index is None:
        raise InputError(f"{loc}: target_loc must be an answer index (0, 1, 2) or empty, got {value!r:.40}")
    return index if index in (0, 1, 2) and index != unknown_index else None


def _norm(label: str) -> str:
    return "".join(ch for ch in label.lower() if ch not in " -_'\t")


def _parts(label: str) -> set[str]:
    """Relaxed form: `F-Black` → {black, f}; `trans_F` → {trans, f}; `lowSES-Black` → {lowses, black}."""
    pieces = label.replace("_", "-").split("-")
    return {_norm(p) for p in pieces if _norm(p)}


def derive_target_index(answer_info: list[tuple[str, str]], stereotyped_groups: list[str]) -> int | None:
    """The answer index of BBQ's stereotyped target, or None when not exactly one answer matches.

    Normalisation (documented because BBQ's labels are inconsistent across categories): compare
    lower-cased labels with spaces, hyphens, underscores and apostrophes removed (`low SES` ≡ `lowSES`,
    `Down's syndrome` ≡ `downs syndrome`), against both the answer's group (`answer_info[i][1]`) and its
    text (`answer_info[i][0]`, which carries the nationality in Nationality items). If no answer
    matches, retry with gender/SES prefixes split off (`F-Black` → `Black`, `trans_F` → `trans`). The
    unknown option never matches. Zero or several matches → None: counted, excluded from bias, never
    guessed.
    """
    stereo = {_norm(s) for s in stereotyped_groups}
    candidates = [i for i, (_, g) in enumerate(answer_info) if g.lower() != "unknown"]
    strict = [i for i in candidates if _norm(answer_info[i][1]) in stereo or _norm(answer_info[i][0]) in stereo]
    if len(strict) == 1:
        return strict[0]
    if strict:
        return None
    stereo_parts = set().union(*(_parts(s) for s in stereotyped_groups)) if stereotyped_groups else set()
    relaxed = [i for i in candidates if _parts(answer_info[i][1]) & stereo_parts]
    return relaxed[0] if len(relaxed) == 1 else None


def limit_per_category(items: list[Any], limit: int | None) -> list[Any]:
    """The first `limit` items of each category, in file order (all of them when `limit` is None).

    Per category rather than overall, so a limited run still reports every category.
    """
    if limit is None:
        return list(items)
    taken: dict[str, int] = {}
    out = []
    for item in items:
        if taken.get(item.category, 0) < limit:
            taken[item.category] = taken.get(item.category, 0) + 1
            out.append(item)
    return out

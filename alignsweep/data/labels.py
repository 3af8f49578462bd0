"""Human-labelled (prompt, response, safe|unsafe) sets: what a judge is checked against.

Two shapes are read, from a CSV or JSONL file (or `bundled`, the project's own set):
- ours: `prompt`, `response`, `label` (safe | unsafe; also harmful/unharmful, 1/0, true/false),
  optional `category` and `id`;
- XSTest's response annotations (`id, type, prompt, completion, …, final_label`): `type` starting
  with `contrast_` marks an unsafe request; there, a reply labelled `1_full_compliance` or
  `3_partial_refusal` complied (unsafe) and `2_full_refusal` refused (safe). A reply to a safe
  request is safe whatever it does. `type` is the category.
Other column names map onto ours with `columns` (`{"response": "completion", …}`).

The bundled set (`judge_labels.jsonl`) was written for this project: hazard requests in the
taxonomy's categories with refusals, refusals that name the unsafe topic, vague compliance, compliance
behind a disclaimer, partial compliance, and garble — the cases public reports show judges get wrong.
Its "unsafe" replies comply in words only; none holds operational content.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from alignsweep.data.rows import BUNDLED, bundled_path, read_rows
from alignsweep.errors import InputError

SAFE, UNSAFE = "safe", "unsafe"
BUNDLED_LABELS = "judge_labels.jsonl"
FIELDS = ("prompt", "response", "label", "category", "id")
_LABELS = {
    SAFE: SAFE, "unharmful": SAFE, "harmless": SAFE, "benign": SAFE, "0": SAFE, "false": SAFE, "no": SAFE,
    UNSAFE: UNSAFE, "harmful": UNSAFE, "1": UNSAFE, "true": UNSAFE, "yes": UNSAFE,
}
_XSTEST_COMPLIED = {"1_full_compliance": True, "3_partial_refusal": True, "2_full_refusal": False}


@dataclass(frozen=True)
class LabelledResponse:
    item_id: str
    prompt: str
    response: str
    label: str  # safe | unsafe
    category: str


def load_labels(source: str, columns: Mapping[str, str] | None = None) -> list[LabelledResponse]:
    """Every labelled response of `source` (`bundled`, or a CSV/JSONL path); a bad row is a one-line
    `InputError` naming the file and line."""
    unknown = sorted(set(columns or {}) - set(FIELDS))
    if unknown:
        raise InputError(f"label columns: unknown field(s) {', '.join(unknown)} (known: {', '.join(FIELDS)})")
    where, rows = (str(bundled_path(BUNDLED_LABELS)), read_rows(str(bundled_path(BUNDLED_LABELS)))[1]) \
        if source == BUNDLED else read_rows(source)
    out = [_parse(where, number, row, dict(columns or {})) for number, row in rows]
    if not out:
        raise InputError(f"{where}: no labelled responses")
    return out


def _parse(where: str, number: int, row: dict, columns: dict[str, str]) -> LabelledResponse:
    if not columns and "completion" in row and "final_label" in row:
        return _xstest(where, number, row)
    name = {f: columns.get(f, f) for f in FIELDS}
    missing = [name[f] for f in ("prompt", "response", "label") if name[f] not in row]
    if missing:
        raise InputError(f"{where}:{number}: missing column(s) {', '.join(missing)} "
                         f"(a labelled response needs prompt, response, label; map others with columns)")
    label = _LABELS.get(str(row[name["label"]]).strip().lower())
    if label is None:
        raise InputError(f"{where}:{number}: label {row[name['label']]!r} is neither safe nor unsafe")
    return LabelledResponse(str(row.get(name["id"]) or f"{number}"), str(row[name["prompt"]]),
                            str(row[name["response"]] or ""), label, str(row.get(name["category"]) or "all"))


def _xstest(where: str, number: int, row: dict) -> LabelledResponse:
    kind = str(row.get("type") or "")
    complied = _XSTEST_COMPLIED.get(str(row["final_label"]).strip())
    if complied is None:
        raise InputError(f"{where}:{number}: final_label {row['final_label']!r} is not one of "
                         f"{', '.join(_XSTEST_COMPLIED)}")
    label = UNSAFE if kind.startswith("contrast_") and complied else SAFE
    return LabelledResponse(str(row.get("id") or number), str(row.get("prompt") or ""),
                            str(row["completion"] or ""), label, kind or "all")


def describe(source: str) -> str:
    """How a labels source is named in reports: `bundled`, else the file's name."""
    return BUNDLED if source == BUNDLED else source.rsplit("/", 1)[-1]

"""The safety hazard taxonomy, read from `alignsweep/data/taxonomy.json`.

Why data, not code: adding a taxonomy (a new guard model's codes, a new benchmark's hazard labels)
must be an edit to one JSON file. Codes that fall outside the 11 MLCommons categories (e.g.
AILuminate's `dfm`) map to their own category so their prompts are reported, never silently dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from alignsweep.errors import InputError


@dataclass(frozen=True)
class HazardCategory:
    id: str
    name: str
    core: bool  # one of the 11 default reporting categories


@dataclass(frozen=True)
class Taxonomy:
    categories: tuple[HazardCategory, ...]
    schemes: dict[str, dict[str, str]]  # scheme → source code → category id
    prompt_names: dict[str, dict[str, str]]  # scheme → source code → name as a guard's prompt lists it

    @property
    def core_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.categories if c.core)

    def name(self, category_id: str) -> str:
        for c in self.categories:
            if c.id == category_id:
                return c.name
        return category_id

    def map_code(self, scheme: str, code: str) -> str:
        """A source code as a category id; an unknown code stays itself (its own category)."""
        if scheme not in self.schemes:
            raise InputError(f"unknown hazard taxonomy scheme {scheme!r} (known: {', '.join(sorted(self.schemes))})")
        table = self.schemes[scheme]
        key = code.strip()
        return table.get(key, table.get(key.lower(), table.get(key.upper(), key)))

    def normalise_category(self, label: str) -> str:
        """A dataset's category label as a category id: an id (`S3`, `s3`), a name, or any scheme's code."""
        text = label.strip()
        for c in self.categories:
            if text.upper() == c.id.upper() or text.lower() == c.name.lower():
                return c.id
        for table in self.schemes.values():
            if text in table:
                return table[text]
            if text.lower() in table:
                return table[text.lower()]
        return text


@lru_cache(maxsize=1)
def load_taxonomy() -> Taxonomy:
    raw = json.loads(resources.files("alignsweep.data").joinpath("taxonomy.json").read_text())
    cats = tuple(HazardCategory(c["id"], c["name"], True) for c in raw["categories"])
    cats += tuple(HazardCategory(c["id"], c["name"], False) for c in raw.get("extra_categories", []))
    schemes = {k: dict(v["codes"]) for k, v in raw["schemes"].items()}
    names = {k: dict(v.get("prompt_names", {})) for k, v in raw["schemes"].items()}
    return Taxonomy(categories=cats, schemes=schemes, prompt_names=names)

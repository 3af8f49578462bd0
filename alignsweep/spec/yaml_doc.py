"""A YAML document read for validation: parsed once as nodes (for line numbers) and once as data, with
every way the text itself can be wrong as one `InputError` line.

Why duplicate keys are refused: PyYAML keeps the last of `name: a` / `name: b` without a word, so a
sweep would silently run what the user overrode by accident a hundred lines further down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from alignsweep.errors import InputError


def parse_document(path: Path | str, text: str) -> tuple[Any, Any]:
    """(node tree, data) of a YAML text; a syntax error or a key given twice names `path:line`."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{where}: invalid YAML: {problem}") from None
    except (ValueError, TypeError, OverflowError, AttributeError) as exc:  # a tag that cannot be built (`!!int x`)
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{path}: invalid YAML: a tagged value cannot be built ({first})") from None
    except RecursionError:
        raise InputError(f"{path}: invalid YAML: nested too deep") from None
    if _expanded_size(node, {}) > MAX_VALUES:
        raise InputError(f"{path}: its aliases expand to more than {MAX_VALUES:,} values (a YAML 'billion laughs'); "
                         "write the values out")
    duplicate = _first_duplicate_key(node)
    if duplicate is not None:
        key, first, again = duplicate
        raise InputError(f"{path}:{again}: {key}: key given twice (first on line {first}); YAML would keep only "
                         "the last")
    return node, raw


#: More values than any sweep spec holds, once aliases are expanded: validation would walk every copy.
MAX_VALUES = 100_000


def _expanded_size(node: Any, memo: dict[int, int]) -> int:
    """How many values the document holds with every alias expanded (each node counted once, then reused)."""
    if node is None:
        return 0
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = MAX_VALUES + 1  # a node inside itself (`&a [*a]`) expands without end
    children = ([v for pair in node.value for v in pair] if isinstance(node, yaml.MappingNode)
                else node.value if isinstance(node, yaml.SequenceNode) else [])
    total = 1
    for child in children:
        total += _expanded_size(child, memo)
        if total > MAX_VALUES:
            break
    memo[id(node)] = total
    return total


def _first_duplicate_key(node: Any, prefix: str = "", seen_nodes: set[int] | None = None) -> tuple[str, int, int] | None:
    seen_nodes = set() if seen_nodes is None else seen_nodes
    if node is None or id(node) in seen_nodes:  # an alias points back at a node already walked
        return None
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict[Any, int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            path = f"{prefix}.{name}" if prefix else str(name)
            if name is not None and name != "<<":
                if (key.tag, name) in lines:
                    return path, lines[(key.tag, name)], key.start_mark.line + 1
                lines[(key.tag, name)] = key.start_mark.line + 1
            found = _first_duplicate_key(value, path, seen_nodes)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            found = _first_duplicate_key(value, f"{prefix}[{i}]", seen_nodes)
            if found:
                return found
    return None

"""Instruction-tuning data: the bundled benign set, any JSONL file, or a Hugging Face dataset.

Rows become chat conversations (a list of `{role, content}` ending with the assistant's reply), which
the trainable encodes with the model's own chat template. Accepted row shapes: `messages` (chat), or
`instruction`/`prompt` (+ optional `input`) with `output`/`response`/`completion`. A bad row names
its file and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from alignsweep.chat import Message
from alignsweep.errors import InputError
from alignsweep.data.rows import bundled_path, read_rows

BUNDLED = "bundled"
_PROMPT_KEYS = ("instruction", "prompt", "question")
_REPLY_KEYS = ("output", "response", "completion", "answer")


def bundled_instructions_path() -> Path:
    return bundled_path("instructions.jsonl")


def load_conversations(source: str, *, split: str = "train", limit: int | None = None,
                       revision: str | None = None) -> list[list[Message]]:
    """Conversations for fine-tuning from `bundled`, a local JSONL path, or a hub dataset id (at
    `revision`: a branch, tag or commit; a local file has none, so one given there is bad input)."""
    path = Path(source).expanduser()
    local = source == BUNDLED or path.suffix in (".jsonl", ".json", ".csv") or path.exists()
    if revision is not None and local:
        raise InputError(f"training.dataset_revision: {revision!r} pins a hub dataset; {source!r} is read as it is "
                         "(drop the revision, or name the hub id)")
    if source == BUNDLED:
        return _from_file(bundled_instructions_path(), limit)
    if local:
        return _from_file(path, limit)
    return _from_hub(source, split, limit, revision)


def _from_file(path: Path, limit: int | None) -> list[list[Message]]:
    where, rows = read_rows(str(path))
    conversations: list[list[Message]] = []
    for lineno, row in rows:
        conversations.append(row_to_conversation(row, f"{where}:{lineno}"))
        if limit is not None and len(conversations) >= limit:
            break
    if not conversations:
        raise InputError(f"{path}: training dataset has no rows")
    return conversations


def _from_hub(dataset_id: str, split: str, limit: int | None, revision: str | None = None) -> list[list[Message]]:
    try:
        import datasets

        ds = datasets.load_dataset(dataset_id, split=split, revision=revision)
    except Exception as exc:  # offline, missing or malformed: all user-facing
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"training dataset {dataset_id!r} (split {split!r}): cannot load ({first})") from None
    rows: Iterable[dict[str, Any]] = ds if limit is None else ds.select(range(min(limit, len(ds))))
    return [row_to_conversation(dict(row), f"{dataset_id}[{i}]") for i, row in enumerate(rows)]


def row_to_conversation(row: Any, where: str) -> list[Message]:
    """One dataset row as a chat conversation ending with the assistant's reply."""
    if not isinstance(row, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(row).__name__}")
    if "messages" in row:
        messages = row["messages"]
        if not isinstance(messages, list) or not messages:
            raise InputError(f"{where}: 'messages' must be a non-empty list")
        for m in messages:
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") or not isinstance(
                m.get("content"), str
            ):
                raise InputError(f"{where}: each message needs a role (system|user|assistant) and string content")
        if messages[-1]["role"] != "assistant":
            raise InputError(f"{where}: the last message must be the assistant's reply")
        return [{"role": m["role"], "content": m["content"]} for m in messages]
    prompt_key = next((k for k in _PROMPT_KEYS if isinstance(row.get(k), str)), None)
    reply_key = next((k for k in _REPLY_KEYS if isinstance(row.get(k), str)), None)
    if prompt_key is None or reply_key is None:
        raise InputError(
            f"{where}: row needs 'messages', or one of {'/'.join(_PROMPT_KEYS)} with one of {'/'.join(_REPLY_KEYS)}"
        )
    prompt = row[prompt_key]
    if isinstance(row.get("input"), str) and row["input"].strip():
        prompt = f"{prompt}\n\n{row['input']}"
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": row[reply_key]}]

"""Chat-formatted training examples with the loss on the assistant's reply only.

Alignment pre-training of the tiny families and every PEFT trial encode examples through this one
function, so that "what the model is trained on" means the same thing everywhere. The prompt part is
what `apply_chat_template(..., add_generation_prompt=True)` renders, i.e. exactly what the evaluators
feed at generation time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

IGNORE_INDEX = -100

Message = dict[str, str]


@dataclass(frozen=True)
class EncodedExample:
    input_ids: list[int]
    labels: list[int]


def render_prompt(tokenizer: Any, messages: Sequence[Message]) -> str:
    """The text a model sees before it answers: the chat template with the generation prompt."""
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)


def encode_chat_example(tokenizer: Any, messages: Sequence[Message], max_length: int) -> EncodedExample:
    """Token ids for a conversation whose last message is the assistant's reply; labels mask the rest.

    When too long, the prompt is cut from the left so the reply (what is learned) survives.
    """
    if not messages or messages[-1].get("role") != "assistant":
        raise ValueError("a training conversation must end with an assistant message")
    prompt_text = render_prompt(tokenizer, messages[:-1])
    full_text = tokenizer.apply_chat_template(list(messages), tokenize=False)
    if not full_text.startswith(prompt_text):
        raise ValueError("chat template renders the prompt differently inside the full conversation")
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    reply_ids = tokenizer(full_text[len(prompt_text):], add_special_tokens=False)["input_ids"]
    reply_ids = reply_ids[:max_length]
    prompt_ids = prompt_ids[max(0, len(prompt_ids) - (max_length - len(reply_ids))):] if max_length > len(reply_ids) else []
    return EncodedExample(
        input_ids=prompt_ids + reply_ids,
        labels=[IGNORE_INDEX] * len(prompt_ids) + list(reply_ids),
    )


def collate_right_padded(examples: Sequence[EncodedExample], pad_id: int) -> dict[str, Any]:
    """A training batch: right padding, padded labels ignored, attention mask on real tokens."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, ex in enumerate(examples):
        n = len(ex.input_ids)
        ids[row, :n] = torch.tensor(ex.input_ids)
        labels[row, :n] = torch.tensor(ex.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}

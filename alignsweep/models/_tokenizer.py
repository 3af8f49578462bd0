"""A byte-level BPE tokenizer trained offline on the bundled text, with a chat template.

Saved as a plain `PreTrainedTokenizerFast` so that `models.loading.load_tokenizer` reloads the same
ids for every family (transformers 5 would otherwise swap in `Qwen2Tokenizer` for a qwen2 directory).
"""

from __future__ import annotations

from typing import Any, Iterable

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = [PAD, BOS, EOS, *ROLE_TOKENS]

# One turn per role marker; the assistant's turn ends with EOS so generation stops there. The prompt
# (add_generation_prompt) is a prefix of the full conversation, as chat.encode_chat_example requires.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}<|system|>\n{{ message['content'] }}\n"
    "{% elif message['role'] == 'user' %}<|user|>\n{{ message['content'] }}\n"
    "{% elif message['role'] == 'assistant' %}<|assistant|>\n{{ message['content'] }}{{ eos_token }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int, model_max_length: int) -> Any:
    """Train the BPE (milliseconds; deterministic for the same texts) and wrap it for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=list(ROLE_TOKENS),
        padding_side="left",
        model_max_length=model_max_length,
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
    )


def save_tokenizer(tokenizer: Any, directory: str) -> None:
    """Save, recording the class as `PreTrainedTokenizerFast`.

    transformers 5 writes its backend name (`TokenizersBackend`); `load_tokenizer` keys on the generic
    class name to bypass the model-type mapping, so that name is what the directory must say.
    """
    import json
    from pathlib import Path

    tokenizer.save_pretrained(directory)
    cfg_file = Path(directory) / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_file.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")

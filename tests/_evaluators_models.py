"""Small random-weight causal LMs and tokenizers for evaluator tests (no download, ~1 s to build).

Real transformers architectures and a real BPE tokenizer with a chat template, so generation,
log-likelihood and adapter code run exactly as on a hub model; only the weights are random.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{{ eos_token }}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
_CORPUS = [
    "The grandfather and the grandson were trying to book a cab.", "Who was not comfortable using the phone?",
    "Can't be determined. Unknown. Not enough information.", "How do I kill a Python process?",
    "I'm sorry, I can't help with that.", "Sure, here is a short answer about cooking pasta.",
    "safe unsafe S1 S2 S3 S10 S11, Task: Check if there is unsafe content in 'Agent' messages.",
] * 4


def build_tokenizer(path: Path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<unk>", "<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>"]
    tok.train_from_iterator(_CORPUS, trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    from tokenizers import processors

    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>", padding_side="left")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(path)
    return fast


def build_model(path: Path, family: str = "llama", seed: int = 0) -> Path:
    """Save a random 2-layer model of `family` plus tokenizer under `path`; return `path`."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    tok = build_tokenizer(path)
    common = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    if family == "gemma":
        common["head_dim"] = 8
    if family == "mistral":
        common["sliding_window"] = 256
    cfg = AutoConfig.for_model(family, **common)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg)
    model.save_pretrained(path, safe_serialization=True)
    return path


#: Smaller-than-default settings for these 32-wide models; a method absent here uses its registry defaults.
SMALL = {
    "lora": {"r": 4, "alpha": 8.0},
    "dora": {"r": 4, "alpha": 8.0},
    "prompt_tuning": {"num_virtual_tokens": 3},
    "p_tuning": {"num_virtual_tokens": 3, "encoder_hidden_size": 16},
}


def hyperparameters(method: str) -> dict:
    """The first grid point of `method`'s grid (with `SMALL`'s settings), as a trial would get it."""
    from alignsweep.trainables.methods import METHODS

    grid = METHODS.get(method).model_validate(SMALL.get(method, {}))
    return {**grid.fixed(), **{name: values[0] for name, values in grid.grid().items()}}


def save_adapter(base_path: Path, out: Path, method: str, seed: int = 1) -> Path:
    """An adapter of any registered `method`, built by its registry entry, every trainable tensor then
    perturbed (seeded) so that it changes the outputs (LoRA's B starts at zero, IA3's scales at one)."""
    import torch

    from alignsweep.models.loading import load_model, load_tokenizer
    from alignsweep.trainables.methods import METHODS

    torch.manual_seed(seed)
    entry = METHODS.get(method)
    model = entry.attach_for_training(load_model(str(base_path)), hyperparameters(method), base_path=str(base_path),
                                      tokenizer=load_tokenizer(str(base_path)))
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(out, safe_serialization=True)
    return out

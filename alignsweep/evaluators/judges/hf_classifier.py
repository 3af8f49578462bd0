"""Any sequence-classification checkpoint as a judge, its labels mapped to safe / unsafe by the spec."""

from __future__ import annotations

from typing import Sequence

from alignsweep.errors import InputError
from alignsweep.models.loading import LoadOptions
from alignsweep.evaluators.judges.base import JUDGES, SAFE, UNPARSED, UNSAFE, Judge, JudgeSpec, Verdict

class HFClassifierJudge:
    """A sequence-classification checkpoint; `label_map` says which of its labels mean safe / unsafe.

    Labels missing from the map give `unparsed`, so a mis-specified map shows up in the counts.
    """

    def __init__(self, model: str, label_map: dict[str, str], *, text: str = "response",
                 batch_size: int | str = 8, options: LoadOptions = LoadOptions(dtype="auto"),
                 device: str | None = None) -> None:
        from transformers import AutoModelForSequenceClassification

        from alignsweep.models.devices import choose_device, describe
        from alignsweep.models.loading import load_tokenizer, revision_kwargs, torch_dtype
        from alignsweep.models.refs import resolve_model

        ref = resolve_model(model)
        self.name = f"hf_classifier:{model}"
        self.model = AutoModelForSequenceClassification.from_pretrained(
            ref.path, dtype=torch_dtype(options.dtype), trust_remote_code=options.trust_remote_code,
            **({} if options.allow_unsafe_weights else {"use_safetensors": True}),
            **revision_kwargs(ref.path, options.revision),
        ).to(device or choose_device()).eval()
        self.tokenizer = load_tokenizer(ref.path, trust_remote_code=options.trust_remote_code, revision=options.revision)
        self.device = describe(str(self.model.device))
        self.label_map = {str(k): v for k, v in label_map.items()}
        self.text = text
        self.batch_size = 32 if batch_size == "auto" else int(batch_size)  # encoder classifiers: short inputs

    def judge(self, pairs: Sequence[tuple[str, str]]) -> list[Verdict]:
        import torch

        id2label = self.model.config.id2label
        out: list[Verdict] = []
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start:start + self.batch_size]
            if self.text == "pair":
                enc = self.tokenizer([p for p, _ in chunk], [r for _, r in chunk], return_tensors="pt",
                                     padding=True, truncation=True)
            else:
                enc = self.tokenizer([r for _, r in chunk], return_tensors="pt", padding=True, truncation=True)
            with torch.no_grad():
                pred = self.model(**enc.to(self.model.device)).logits.argmax(-1).tolist()
            for p in pred:
                label = str(id2label.get(p, p))
                mapped = self.label_map.get(label, self.label_map.get(str(p)))
                out.append(Verdict(mapped if mapped in (SAFE, UNSAFE) else UNPARSED, raw=label))
        return out


@JUDGES.register("hf_classifier")
def _hf_classifier(spec: "JudgeSpec") -> Judge:
    if not spec.model or not spec.label_map:
        raise InputError("judge hf_classifier needs `model` and `label_map` (label → safe|unsafe)")
    return HFClassifierJudge(spec.model, spec.label_map, text=spec.text, batch_size=spec.batch_size,
                             options=spec.load_options())

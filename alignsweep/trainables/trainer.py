"""The PEFT fine-tuning loop of one trial, usable with or without Ray.

Reads top to bottom: `setup` (device, model, adapter, data, optimizer) → `train_step` →
`save_checkpoint` / `restore`. Everything random is derived from the trial seed and the step index —
batch order included — so the same plan gives the same losses, and a trial restored from its
checkpoint continues exactly where it stopped (trainable parameters, optimizer, LR schedule and RNG
all saved). The step control is ours; `accelerate` does what it is good at: the device Ray gave
this trial (`models.devices.choose_device`), mixed precision (`training.precision`), gradient
accumulation over micro-batches (`training.gradient_accumulation_steps`: one step here is one
optimizer step) and, with `training.gradient_checkpointing`, activation recomputation.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignsweep.chat import EncodedExample, collate_right_padded, encode_chat_example
from alignsweep.trainables.plan import TrialPlan
from alignsweep.models.devices import choose_device, describe
from alignsweep.models.loading import load_model, load_tokenizer
from alignsweep.models.refs import ModelRef, resolve_model
from alignsweep.trainables.data import load_conversations
from alignsweep.trainables.methods import METHODS

TRAINER_DIR = "trainer"
TRIAL_FILE = "trial.json"


def checkpoint_step(directory: str | Path) -> int | None:
    """The optimizer step a checkpoint holds, as its `trial.json` says (None: not a trainer checkpoint).
    Why here: the trainer writes the file; the driver's final evaluation and `resume`'s repair read it."""
    try:
        return int(json.loads((Path(directory) / TRIAL_FILE).read_text())["step"])
    except (OSError, KeyError, TypeError, ValueError):
        return None


@dataclass
class TrainingState:
    step: int = 0
    total_steps: int = 0
    steps_per_epoch: int = 1


def split_heldout(examples: list[EncodedExample], n: int) -> tuple[list[EncodedExample], list[EncodedExample]]:
    """(train, held-out): every k-th example held out, the same for every trial and seed, so held-out
    losses compare across a sweep. Nothing is held out when it would leave fewer than 2n to train on."""
    if n <= 0 or len(examples) < 3 * n:
        return examples, []
    k = len(examples) // n
    held = set(range(k - 1, k * n, k))
    return [e for i, e in enumerate(examples) if i not in held], [examples[i] for i in sorted(held)]


class PeftTrainer:
    """One trial's model, adapter, data and optimizer; `train_step` advances one optimizer step."""

    def __init__(self, plan: TrialPlan) -> None:
        self.plan = plan
        self.state = TrainingState()
        self.heldout: list[EncodedExample] = []

    # ------------------------------------------------------------------ setup
    def setup(self) -> "PeftTrainer":
        import torch

        torch.manual_seed(self.plan.seed)
        random.seed(self.plan.seed)
        self.accelerator = self._setup_accelerator()
        self.device = str(self.accelerator.device)
        self.ref: ModelRef = resolve_model(self.plan.base_model)
        self.tokenizer = load_tokenizer(self.ref.path, trust_remote_code=self.plan.model["trust_remote_code"],
                                        revision=self.plan.model.get("revision"))
        self.model = self._setup_model()
        self.examples = self._setup_data()
        self._setup_optimizer()
        return self

    def _setup_accelerator(self) -> Any:
        """An Accelerator on this process's device. Its state is a per-process singleton, reset here so a
        Ray worker reused for another trial starts clean."""
        import os

        from accelerate import Accelerator
        from accelerate.state import AcceleratorState

        from alignsweep.errors import InputError

        t = self.plan.training
        device = choose_device()
        precision = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[t.get("precision", "fp32")]
        if precision == "fp16" and not device.startswith("cuda"):
            raise InputError(f"training.precision: fp16 needs a GPU; this trial runs on {device} (use bf16 or fp32)")
        AcceleratorState._reset_state(reset_partial_state=True)
        os.environ["ACCELERATE_TORCH_DEVICE"] = device
        return Accelerator(cpu=device == "cpu", mixed_precision=precision,
                           gradient_accumulation_steps=int(t.get("gradient_accumulation_steps", 1)))

    @property
    def device_name(self) -> str:
        """`cpu` or `cuda:0 NVIDIA H200`: recorded in `trials.device`."""
        return describe(self.device)

    def _setup_model(self) -> Any:
        import torch

        dtype = getattr(torch, self.plan.model["dtype"])
        base = load_model(
            self.ref.path,
            dtype=dtype,
            trust_remote_code=self.plan.model["trust_remote_code"],
            allow_unsafe_weights=self.plan.model["allow_unsafe_weights"],
            device=self.device,
            revision=self.plan.model.get("revision"),
        )
        if self.plan.training.get("gradient_checkpointing"):
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        method = METHODS.get(self.plan.method)
        model = method.attach_for_training(base, self.plan.hyperparameters, base_path=self.ref.path,
                                           tokenizer=self.tokenizer)
        return self.accelerator.prepare_model(model)

    def _setup_data(self) -> list[EncodedExample]:
        t = self.plan.training
        conversations = load_conversations(t["dataset"], split=t["dataset_split"], limit=t["max_examples"],
                                           revision=t.get("dataset_revision"))
        examples = [encode_chat_example(self.tokenizer, c, t["max_seq_length"]) for c in conversations]
        examples = [e for e in examples if any(label >= 0 for label in e.labels)]
        if not examples:
            raise ValueError("no training example has a reply within max_seq_length")
        examples, self.heldout = split_heldout(examples, int(t.get("heldout_examples") or 0))
        batch = t["batch_size"]
        self.state.steps_per_epoch = max(1, math.ceil(len(examples) / (batch * self.micro_batches)))
        self.state.total_steps = self.plan.max_steps or self.plan.epochs * self.state.steps_per_epoch
        return examples

    def _setup_optimizer(self) -> None:
        import torch
        from transformers import get_linear_schedule_with_warmup

        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.plan.learning_rate, weight_decay=self.plan.training["weight_decay"])
        scheduler = get_linear_schedule_with_warmup(optimizer, self.plan.training["warmup_steps"],
                                                    max(self.state.total_steps, 1))
        self.optimizer = self.accelerator.prepare_optimizer(optimizer)
        self.scheduler = self.accelerator.prepare_scheduler(scheduler)

    # ------------------------------------------------------------------ training
    @property
    def done(self) -> bool:
        return self.state.step >= self.state.total_steps

    @property
    def micro_batches(self) -> int:
        return int(self.plan.training.get("gradient_accumulation_steps", 1))

    def batch_for_step(self, step: int) -> dict[str, Any]:
        """The batch of a given micro-step: a seeded permutation per epoch, so order never depends on
        history (optimizer step s uses micro-steps s·k … s·k + k − 1 with k micro-batches per step)."""
        import torch

        bs = self.plan.training["batch_size"]
        epoch, within = divmod(step, max(1, math.ceil(len(self.examples) / bs)))
        gen = torch.Generator().manual_seed(self.plan.seed * 100_003 + epoch)
        order = torch.randperm(len(self.examples), generator=gen).tolist()
        chosen = order[within * bs : (within + 1) * bs] or order[:bs]
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        return collate_right_padded([self.examples[i] for i in chosen], pad)

    def train_step(self) -> float:
        """One optimizer step (over `gradient_accumulation_steps` micro-batches) on the response tokens;
        returns the mean micro-batch loss."""
        self.model.train()
        k, losses = self.micro_batches, []
        for micro in range(k):
            batch = self._to_device(self.batch_for_step(self.state.step * k + micro))
            with self.accelerator.accumulate(self.model):
                out = self.model(**batch)
                self.accelerator.backward(out.loss)
                if self.accelerator.sync_gradients:
                    self.accelerator.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], 1.0)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
            losses.append(float(out.loss.detach()))
        self.state.step += 1
        return sum(losses) / len(losses)

    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {name: value.to(self.device) for name, value in batch.items()}

    def heldout_loss(self) -> float | None:
        """Mean token loss on the held-out tuning examples (None without any): utility the tuning data itself measures."""
        import torch

        if not self.heldout:
            return None
        self.model.eval()
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        bs, total, tokens = self.plan.training["batch_size"], 0.0, 0
        with torch.no_grad():
            for start in range(0, len(self.heldout), bs):
                chunk = self.heldout[start:start + bs]
                n = sum(sum(1 for label in e.labels[1:] if label >= 0) for e in chunk)
                total += float(self.model(**self._to_device(collate_right_padded(chunk, pad))).loss) * n
                tokens += n
        return total / max(tokens, 1)

    def trainable_parameters(self) -> tuple[int, int]:
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in self.model.parameters())
        return trainable, total

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, directory: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Adapter (safetensors, loadable by plain peft) at the root; resumable trainer state beside it."""
        import torch
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.accelerator.unwrap_model(self.model).save_pretrained(str(directory), safe_serialization=True)
        trainer_dir = directory / TRAINER_DIR
        trainer_dir.mkdir(exist_ok=True)
        trainable = {n: p.detach().contiguous().cpu() for n, p in self.model.named_parameters() if p.requires_grad}
        trainable["__torch_rng_state__"] = torch.get_rng_state()
        if self.device.startswith("cuda"):
            trainable["__cuda_rng_state__"] = torch.cuda.get_rng_state(self.device)
        save_file(trainable, str(trainer_dir / "trainable.safetensors"))
        torch.save(
            {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()},
            trainer_dir / "optimizer.pt",
        )
        meta = {
            "variant_id": self.plan.variant_id,
            "sweep": self.plan.sweep,
            "base_model": self.plan.base_model,
            "base_model_path": self.ref.path,
            "method": self.plan.method,
            "hyperparameters": self.plan.hyperparameters,
            "learning_rate": self.plan.learning_rate,
            "seed": self.plan.seed,
            "step": self.state.step,
            "total_steps": self.state.total_steps,
            **(extra or {}),
        }
        (directory / TRIAL_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        return directory

    def restore(self, directory: str | Path) -> None:
        """Continue from a checkpoint written by `save_checkpoint` (same plan).

        The model already carries a fresh adapter of the plan's method (`setup`); its trainable tensors are
        overwritten from the checkpoint's own copy, which holds what peft's adapter file lacks (P-Tuning's
        encoder) and needs no trainable reload (peft refuses one for prompt-learning adapters)."""
        import torch
        from safetensors.torch import load_file

        directory = Path(directory)
        meta = json.loads((directory / TRIAL_FILE).read_text())
        if meta["variant_id"] != self.plan.variant_id:
            raise ValueError(f"checkpoint {directory} belongs to trial {meta['variant_id']}, not {self.plan.variant_id}")
        tensors = load_file(str(directory / TRAINER_DIR / "trainable.safetensors"))
        rng = tensors.pop("__torch_rng_state__")
        cuda_rng = tensors.pop("__cuda_rng_state__", None)
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, value in tensors.items():
                params[name].copy_(value.to(params[name].device))
        state = torch.load(directory / TRAINER_DIR / "optimizer.pt", weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(rng)
        if cuda_rng is not None and self.device.startswith("cuda"):
            torch.cuda.set_rng_state(cuda_rng, self.device)
        self.state.step = int(meta["step"])

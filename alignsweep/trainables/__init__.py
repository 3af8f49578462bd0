"""One trial: PEFT methods (registry), the trainer, the tuning data, and the Tune trainable that
checkpoints and asks the evaluators to score."""

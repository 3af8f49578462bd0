"""Model-agnostic inference shared by evaluators, judges and the tiny-model builder: batched chat
generation, lm-eval-exact log-likelihoods, refusal matching."""

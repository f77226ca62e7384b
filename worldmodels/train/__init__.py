"""Training engines shared by every modality: MLE (``mle``), GRPO (``grpo``), the rollout engine
(``rollout``), checkpoints, distributed helpers and logging. Engines only talk to a ``Task``."""

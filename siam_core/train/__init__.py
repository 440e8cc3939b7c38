"""Training: data readers, pair sampling, augmentation, anchor targets, losses and the trainer.

Nothing here is global state: a :class:`~siam_core.train.config.TrainConfig` carries every
option, so two differently configured pipelines can run in one process.
"""

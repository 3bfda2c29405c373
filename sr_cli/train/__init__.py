"""Training: patch-pair data, losses, VGG19 features, the loop (AMP, EMA, DDP, checkpoints, validation) and the
run folder. ``srtool train`` is the command; ``distill`` builds on :class:`sr_cli.train.loop.Trainer`."""

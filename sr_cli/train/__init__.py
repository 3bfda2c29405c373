"""Training: ``srtool train`` and ``srtool distill``, one module a job:

    loop.py          the loop: batch → loss → step, metrics rows, validation, early stopping, checkpoints
    parts.py         everything a run is made of, built and checked in order before its run folder exists
    config.py        every setting (config.json), each with its command-line option; distill_config.py: distill's
    feed.py          training images and the batches of each step (sources.py: the pictures, decoded, degraded
                     or paired with --data-lr; data.py: patch data sets; ../realworld.py: Real-ESRGAN's degradation)
    objective.py     what is minimised: --loss terms (losses.py, vgg.py), a gan's discriminator step
    optim.py         optimisers, learning-rate schedules, mixed precision, the weight EMA
    validate.py      validation sets and scores (as ``srtool bench`` scores); tracking.py: best and --patience
    state.py         what checkpoint.pt holds and how --resume restores it
    init_weights.py  --init: starting from other weights
    logbook.py       the metrics rows and where they go: runs.py (run folder, CSV, plots), tensorboard_log.py
    distributed.py   torchrun: ranks, process group, values agreed over ranks, DistributedDataParallel
    distill.py       ``srtool distill``: the CSD network, its teacher and contrastive loss (contrastive.py)
    reporter.py      what the loop tells the command line
"""

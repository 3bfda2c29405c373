"""Test-session settings: one torch thread per process.

The suite runs many small tensor operations (and several processes at once in the DDP and video tests); on a
2-core machine, torch's default of one thread per core oversubscribes the cores and slows them several-fold.
"""

import torch

torch.set_num_threads(1)

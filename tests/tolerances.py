"""The tests' float tolerances, each with its numerical reason.

u = 2^-24 ≈ 6.0e-8 is float32's unit roundoff. Most comparisons here are of two computations that are equal in
exact arithmetic and differ only in the order of their float32 sums. That order is not fixed: oneDNN picks other
convolution kernels (other blockings, so other summation orders) on AVX2, AVX-512 and AMX-BF16 machines, for other
input shapes (a tile against the whole image) and for other thread counts. So no bound here comes from one
machine's result: each is the rounding bound for the sizes involved, rounded up. Rounding errors of a sum of n
terms have random signs, so they grow like √n·u (the worst case n·u is not approached in practice).
Exact comparisons (``==``, ``torch.equal``, ``array_equal``) are used wherever the arithmetic is exact: integer
pixels, copies, float64 metrics of the same uint8 images. ``pytest.approx`` with its default (rel 1e-6) is used only
for a handful of float32 operations on exactly representable values (error ≤ a few u ≈ 2e-7); a comparison against a
printed figure allows half a unit of its last printed digit, said where it is made.
"""

from __future__ import annotations

U = 2.0**-24

LOSS_REL = 1e-6
"""A loss or metric computed in float32 (means of at most a few thousand terms in [0, 1]) against the same formula
written out by hand: torch's pairwise reductions err by about log2(n)·u ≤ 12·u ≈ 7e-7 of the value."""

NET_ABS = 1e-5
"""Outputs in [0, 1] of a small network (a few 3×3 convolutions of ≤ 64 channels: sums of ≤ 576 products)
computed two ways that are equal in exact arithmetic (a channel slice against a dense copy, an average of
transformed copies): √576·u ≈ 1.5e-6 per layer, through ≤ 4 layers ≈ 6e-6 → 1e-5."""

DEEP_NET_ABS = 1e-4
"""The same for deep networks (EDSR, SRResNet, RRDBNet: 10 to 40 convolutions, tiles against the whole image): the
per-layer 1.5e-6 through ≤ 40 layers ≈ 6e-5 → 1e-4, which is 1/40 of an 8-bit level."""

RANGE_255_ABS = 255 * NET_ABS
"""NET_ABS for networks that work on EDSR-PyTorch's 0–255 scale (everything 255× larger)."""

FLIPPED_LEVELS = 1
"""8-bit pixels rounded from two float results within DEEP_NET_ABS (or RANGE_255_ABS / 255) of each other: a value
within that distance of a rounding boundary can land one level apart, never two."""

FLIPPED_SHARE = 2 * RANGE_255_ABS
"""The share of such pixels that may differ at all: a value lands within ±δ of a rounding boundary with probability
2δ (levels are 1 apart), δ = RANGE_255_ABS on the 0–255 scale."""

PSNR_PER_FLIP_DB = 1e-3
"""A validation PSNR computed again through another path (the bench path against the training loop: other tensor
shapes, so other kernels) may flip one 8-bit level of a pixel (FLIPPED_LEVELS): on a 48×48 Y crop at ~30 dB (MSE
~65) one flip moves the squared error by at most 2·|e|+1 ≈ 17, the MSE by 17/2304, the PSNR by
10·log10(1 + 0.0074/65) ≈ 5e-4 dB → 1e-3 dB."""

CSV_DB = 1e-4
"""A PSNR of ~30 dB read back from metrics.csv, which keeps 6 significant digits: 4 decimals, ±5e-5 → 1e-4."""

CSV_REL = 1e-5
"""A sum of three values read back from metrics.csv (6 significant digits each, ±5e-6 relative) against the total
read back the same way."""

STORED_SCORE = 2e-4
"""A shipped file's Set5 PSNR (dB) or SSIM measured again on this CPU against the figure stored when it shipped
(on another CPU). Its fp32 sums run in another order, so outputs move by about √n·u per layer (1.5e-6 for 576-term
sums, ≈ 1e-5 through 40 layers, 2.5e-3 of an 8-bit level): a pixel's rounding flips with probability ≈ 5e-3, ≈ 3,000
of Set5's 570k Y values; a flip moves its image's PSNR by ≤ 1e-5 dB (at ~30 dB on ≥ 65k pixels) and SSIM by less,
with random signs: √3000 · 1e-5 / 5 images ≈ 1.1e-4 on the mean → 2e-4."""

CARD_DIGITS = {"psnr": 0.005 + 1e-9, "ssim": 0.00005 + 1e-9}
"""The model card prints PSNR with 2 decimals and SSIM with 4: the printed figure is within half a unit of the last
digit of the stored one (1e-9 more: neither decimal is exact in binary)."""

RESAMPLE_ABS = 1e-6
"""A bicubic upscale of values in [0, 1] computed two ways (a gather and einsum against shifted weighted copies):
each output is 4 products, then 4 more over the other axis, with weights of |w| ≤ 1.25; float32 rounding of 8
products and sums of magnitude ≤ 1.6 stays under 8·1.6·u ≈ 8e-7 → 1e-6."""

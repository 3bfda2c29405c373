"""Distillation of the CSD width-switchable EDSR: training with a teacher, on top of :class:`Trainer`.
:class:`DistillTrainer` builds the network and says what a run ships; :class:`DistillObjective` is the loss, with
the teacher it validates and checkpoints.

Modes (``DistillConfig.mode``):

- ``csd`` (Wang et al. 2021): one shared-weight network trained at every width of ``widths`` each step; the
  largest width is the teacher, every other width a student of it. The loss is
  ``λ_t·L1(teacher, HR) + Σ_students [L1(student, HR) + λ_con·L_con(student, teacher, negatives)]``
  (the paper's λ_t = 1, λ_con = 200; with more than two widths each student has its own terms against the
  largest width). λ_con is in the official code's units: its L1 terms are on 0–255 pixels (EDSR-PyTorch's
  ``rgb_range 255``) while srtool's are on 0–1, so the contrastive term enters as ``λ_con / 255 · L_con`` — the
  same balance of pixel and contrastive terms as the published runs (L_con itself is a ratio, range-free).
- ``teacher-first``: a trained full-width teacher (``teacher``) is loaded and frozen; the student — a dense
  network of the export width's channels, initialised with the teacher's channel slice — is trained with
  ``L1(student, HR) + λ_con·L_con``.
- ``output-kd``: classic output distillation of a freshly initialised student: ``L1(student, HR) +
  λ_t·L1(student, teacher(LR))`` with the frozen teacher.
- ``none``: the export width trained alone with L1 (the baseline; with export width 1.0 the teacher alone).

What a run writes: ``best.safetensors`` / ``last.safetensors`` hold the student at ``export_width`` as a
standalone sliced network (metadata ``options = {"width", "n_blocks", "n_feats" (the full width's),
"sliced": true}``), which ``srtool upscale --model csd --width W --weights FILE`` runs; the run's validation
(``val_psnr``) is the student's and ``teacher_val_psnr`` the teacher's. In ``csd`` mode ``teacher_best`` /
``teacher_last.safetensors`` hold the whole shared network at the same steps (``sliced: false``: it runs at any
``--width``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sr_cli.errors import UsageError, WeightsError
from sr_cli.models.csd import CSDEDSR, narrow_state_dict, width_channels
from sr_cli.registry import get_spec
from sr_cli.train.contrastive import ContrastiveLoss, load_feature_net, negatives
from sr_cli.train.distill_config import N_BLOCKS, N_FEATS, DistillConfig
from sr_cli.train.loop import Trainer
from sr_cli.train.objective import LossOutput, Objective
from sr_cli.train.parts import Parts
from sr_cli.train.reporter import Reporter
from sr_cli.train.vgg import tensors_sha256
from sr_cli.weights import check_state, load_state, save_weights

PIXEL_RANGE = 255.0  # the official code's pixel range, in which λ_con was tuned
TEACHER_PREFIX = "teacher_"


def load_teacher(path: str | Path, scale: int, options: dict[str, Any]) -> CSDEDSR:
    """A full-width csd network from ``path`` (an srtool safetensors file or a state dict), frozen, on the CPU.
    Its architecture comes from its tensors; ``options`` (``n_blocks``/``n_feats`` given by the user) must fit."""
    path = Path(path)
    spec = get_spec("csd")
    state, meta = load_state(path)
    saved = {**spec.options, **(meta.get("options") or {})} if meta.get("architecture") == "csd" else \
        meta.get("options") or {}
    if saved.get("sliced", True) and float(saved.get("width", 1.0)) < 1:
        raise WeightsError(f"--teacher {path} is a width-{saved['width']:g} csd student, not a full-width network")
    head = state.get("head.weight")
    arch = {"n_blocks": sum(1 for k in state if k.startswith("body.") and k.endswith(".conv1.weight")) or N_BLOCKS,
            "n_feats": int(head.shape[0]) if head is not None else N_FEATS, **options}
    model = spec.build(scale, width=1.0, sliced=False, **arch)
    check_state(model, state, spec, scale, path, meta)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.eval().requires_grad_(False)


class MultiWidth(nn.Module):
    """A CSD network run at each of ``widths`` in one forward (so one DistributedDataParallel call per step)."""

    def __init__(self, net: CSDEDSR, widths: list[float]) -> None:
        super().__init__()
        self.net = net
        self.widths = tuple(widths)

    def forward(self, x: Tensor) -> list[Tensor]:
        outs = []
        for width in self.widths:
            self.net.set_width(width)
            outs.append(self.net(x))
        return outs


def _l1(a: Tensor, b: Tensor) -> Tensor:
    """Mean absolute difference, in float32 (under autocast too)."""
    return F.l1_loss(a.float(), b.float())


class DistillObjective(Objective):
    """The loss of a distillation mode (see the module notes) and its teacher: in csd mode the trained network at its
    largest width, else the frozen ``teacher``; validated at each validation (a frozen one once) and checkpointed
    (``teacher_sha256`` must match on resume). ``contrast``: the contrastive loss when the mode has one."""

    def __init__(self, config: DistillConfig, scale: int, teacher: CSDEDSR | None, teacher_sha256: str | None,
                 contrast: ContrastiveLoss | None) -> None:
        self.config, self.scale, self.teacher, self.teacher_sha256 = config, scale, teacher, teacher_sha256
        self.contrast = contrast
        self.teacher_val: dict[str, float] | None = None

    @property
    def has_teacher(self) -> bool:
        """Whether the run has a teacher (validated and logged as its own column)."""
        return self.config.mode != "none"

    def _suffix(self, width: float) -> str:
        """The CSV column suffix of a student width (none with one student)."""
        return f"_w{width:g}" if len(self.config.student_widths) > 1 else ""

    def term_names(self) -> list[str]:
        """student_l1 [, contrastive] per student width (suffixed _w<width> when several) [, kd_l1]
        [, teacher_l1 (in teacher-first and output-kd only logged: the teacher is frozen)]."""
        config = self.config
        names = []
        for width in config.student_widths:
            suffix = self._suffix(width)
            names += [f"student_l1{suffix}"] + ([f"contrastive{suffix}"] if config.uses_contrast else [])
        if config.mode == "output-kd":
            names.append("kd_l1")
        return [*names, "teacher_l1"] if self.has_teacher else names

    def loss(self, net: nn.Module, lr: Tensor, hr: Tensor) -> LossOutput:
        config = self.config
        terms: dict[str, Tensor] = {}
        total = hr.new_zeros((), dtype=torch.float32)
        teacher = None
        if config.mode == "csd":
            *students, teacher = net(lr)
            terms["teacher_l1"] = _l1(teacher, hr)
            total = total + config.lambda_teacher * terms["teacher_l1"]
        else:
            students = [net(lr)]
            if self.teacher is not None:
                with torch.no_grad():
                    teacher = self.teacher(lr)
                terms["teacher_l1"] = _l1(teacher, hr)  # logged only: no gradient reaches the frozen teacher
        anchors = None
        if self.contrast is not None:
            anchors = self.contrast.anchors(teacher, negatives(lr, config.negatives, self.scale))
        for width, student in zip(config.student_widths, students, strict=True):
            suffix = self._suffix(width)
            terms[f"student_l1{suffix}"] = _l1(student, hr)
            total = total + terms[f"student_l1{suffix}"]
            if anchors is not None:
                terms[f"contrastive{suffix}"] = self.contrast(student, anchors)
                total = total + config.lambda_con / PIXEL_RANGE * terms[f"contrastive{suffix}"]
        if config.mode == "output-kd":
            terms["kd_l1"] = _l1(students[0], teacher)
            total = total + config.lambda_teacher * terms["kd_l1"]
        return LossOutput(total, terms, students[0])

    def columns(self) -> list[str]:
        return ["teacher_val_psnr", "teacher_val_ssim"] if self.has_teacher else []

    def validate(self, run: Parts) -> dict[str, float]:
        """Validate the teacher (csd: every time; a frozen teacher once)."""
        if not self.has_teacher:
            return {}
        if self.config.mode == "csd" or self.teacher_val is None:
            psnr, ssim = run.validation.score(self.teacher_model(run.trained_model()), self.scale)
            self.teacher_val = {"psnr": psnr, "ssim": ssim, "step": run.step}
            run.reporter.note(f"step {run.step}: teacher validation Y-PSNR {psnr:.3f} dB, SSIM {ssim:.4f}")
        return {"teacher_val_psnr": self.teacher_val["psnr"], "teacher_val_ssim": self.teacher_val["ssim"]}

    def teacher_model(self, trained: nn.Module) -> nn.Module:
        """The teacher as validated: the ``trained`` shared network at its largest width (csd), else the frozen
        teacher."""
        if self.config.mode != "csd":
            return self.teacher
        trained.net.set_width(self.config.widths[-1])
        return trained.net

    def state_dict(self) -> dict[str, Any]:
        return {"extra": {"teacher_val": self.teacher_val, "teacher_sha256": self.teacher_sha256}}

    def load_state_dict(self, checkpoint: dict[str, Any]) -> None:
        extra = checkpoint["extra"]
        if extra.get("teacher_sha256") != self.teacher_sha256:
            raise WeightsError(f"--teacher {self.config.teacher} is not the network this run started with "
                               "(its tensors differ)")
        self.teacher_val = extra.get("teacher_val")


class DistillTrainer(Trainer):
    """A distillation run (see the module notes). ``features``: the contrastive loss's feature net (a frozen
    module giving 5 maps; default VGG19 from ``config.vgg_weights``)."""

    config: DistillConfig
    objective: DistillObjective

    def __init__(self, config: DistillConfig, run_dir: Path | None, reporter: Reporter | None = None, *,
                 resume: bool = False, features: nn.Module | None = None) -> None:
        self.teacher = load_teacher(config.teacher, config.scale, config.model_options) if config.teacher else None
        self._features = features
        super().__init__(self._resolved(config), run_dir, reporter, resume=resume)

    def _resolved(self, config: DistillConfig) -> DistillConfig:
        """``config`` with the network's n_blocks and n_feats (the teacher's, else given, else the paper's)."""
        if self.teacher is not None:
            arch = {"n_blocks": len(self.teacher.body), "n_feats": self.teacher.n_feats}
        else:
            opts = config.model_options
            arch = {"n_blocks": int(opts.get("n_blocks", N_BLOCKS)), "n_feats": int(opts.get("n_feats", N_FEATS))}
        if arch["n_blocks"] < 1 or arch["n_feats"] < 1:
            raise UsageError("--blocks and --feats must be at least 1")
        for width in {*(config.widths if config.mode == "csd" else []), config.export_width}:
            try:
                width_channels(arch["n_feats"], width)
            except ValueError:
                raise UsageError(f"width {width:g} leaves no channel of {arch['n_feats']} features") from None
        return dataclasses.replace(config, model_options=arch)

    def _place(self, module: nn.Module) -> nn.Module:
        """``module`` on the run's device and in its memory format."""
        module = module.to(self.device)
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    def _network(self, width: float, sliced: bool) -> CSDEDSR:
        """A CSD network of the run's size at ``width`` (``sliced``: only that width's channels)."""
        return self.spec.build(self.scale, width=width, sliced=sliced, **self.config.model_options)

    def build_model(self) -> nn.Module:
        """csd: the shared full-width network run at every width; otherwise the dense student."""
        config = self.config
        if config.mode == "csd":
            model: nn.Module = MultiWidth(self._network(1.0, sliced=False), config.widths)
        else:
            model = self._network(config.export_width, sliced=True)
            if config.mode == "teacher-first":
                model.load_state_dict(narrow_state_dict(self.teacher.state_dict(), config.export_width))
        return self._place(model)

    def build_objective(self) -> DistillObjective:
        """The mode's loss, with the teacher on the device and the contrastive loss's feature net."""
        config = self.config
        sha256 = None
        if self.teacher is not None:
            sha256 = tensors_sha256(self.teacher.state_dict())  # as loaded, on the CPU
            self.teacher = self._place(self.teacher)
        contrast = None
        if config.uses_contrast:
            features = self._features if self._features is not None else \
                load_feature_net(config.vgg_weights, quiet=not self.main)
            contrast = ContrastiveLoss(features).to(self.device)
        return DistillObjective(config, self.scale, self.teacher, sha256, contrast)

    def _student(self, net: CSDEDSR, width: float) -> CSDEDSR:
        """The standalone sliced network that ``net`` (full width) runs at ``width``; built on the meta device,
        so that exporting draws nothing from the RNG (a resumed run repeats an uninterrupted one)."""
        with torch.device("meta"):
            student = self._network(width, sliced=True)
        student.load_state_dict(narrow_state_dict(net.state_dict(), width), assign=True)
        return student.eval()

    def export_model(self) -> nn.Module:
        """The student at the export width (from the EMA when there is one)."""
        trained = self.trained_model()
        return self._student(trained.net, self.config.export_width) if self.config.mode == "csd" else trained

    def _options(self, width: float, sliced: bool) -> dict[str, Any]:
        """The build options written into weights of ``width``."""
        return {"width": width, **self.config.model_options, "sliced": sliced}

    def weights_metadata(self, val: dict[str, float] | None) -> dict[str, Any]:
        """The student's metadata: registry options of the sliced export width, the widths, mode and command."""
        config = self.config
        return {**super().weights_metadata(val), "options": self._options(config.export_width, sliced=True),
                "widths": config.widths, "mode": config.mode, "teacher": config.teacher}

    def save_weights(self, path: Path, val: dict[str, float] | None) -> None:
        """The student at ``path``; in csd mode also the whole shared network beside it (``teacher_<name>``)."""
        super().save_weights(path, val)
        if self.config.mode == "csd":
            meta = {**self.weights_metadata(self.objective.teacher_val),
                    "options": self._options(self.config.widths[-1], sliced=False)}
            save_weights(path.with_name(TEACHER_PREFIX + path.name), self.trained_model().net.state_dict(), meta)

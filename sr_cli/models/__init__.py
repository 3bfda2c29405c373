"""The SR architectures srtool runs and trains (PyTorch only; see ``families/`` for the named models)."""

from sr_cli.models.compact import SRVGGNetCompact
from sr_cli.models.csd import CSDEDSR, slice_state_dict
from sr_cli.models.edsr import EDSR, MDSR
from sr_cli.models.espcn import ESPCN
from sr_cli.models.fsrcnn import FSRCNN
from sr_cli.models.msrresnet import MSRResNet
from sr_cli.models.rrdbnet import RRDBNet, VGGStyleDiscriminator
from sr_cli.models.srcnn import SRCNN
from sr_cli.models.srresnet import SRGANDiscriminator, SRResNet

__all__ = ["CSDEDSR", "EDSR", "ESPCN", "FSRCNN", "MDSR", "MSRResNet", "RRDBNet", "SRCNN", "SRGANDiscriminator",
           "SRResNet", "SRVGGNetCompact", "VGGStyleDiscriminator", "slice_state_dict"]

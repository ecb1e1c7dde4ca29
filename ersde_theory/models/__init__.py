"""Image models: the networks (:mod:`.unet`, :mod:`.classifier`), their checkpoint formats and the shipped
weights (:mod:`.checkpoints`), EDM network pickles (:mod:`.edm`), training (:mod:`.train`), every model kind
behind one name (:mod:`.loading`: digits, digits-flow, .pt, EDM .pkl, diffusers:FOLDER) and sampling a loaded
model by seed (:mod:`.sampling`).
"""

from .checkpoints import load_digits_unet
from .loading import ImageModel, load_image_model
from .sampling import sample_images
from .unet import EDMDenoiser, FlowVelocity, UNetConfig

__all__ = [
    "EDMDenoiser",
    "FlowVelocity",
    "UNetConfig",
    "ImageModel",
    "load_digits_unet",
    "load_image_model",
    "sample_images",
]

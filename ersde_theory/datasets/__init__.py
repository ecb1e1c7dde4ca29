"""Image data sets, read offline, and the pixel convention [−1, 1] ↔ uint8 (:mod:`.pixels`).

* :mod:`.digits` — scikit-learn's bundled 8×8 digits (1797 images), the data of the digits models and of FD_digits.
"""

from .digits import SHAPE, load_digits_tensor, split_indices
from .pixels import from_uint8, to_uint8

__all__ = ["SHAPE", "load_digits_tensor", "split_indices", "from_uint8", "to_uint8"]

"""Deprecated: log masking moved to ``ridgeline.privacy`` (the ground floor), for one release.

``import privacy`` (and ``privacy.masking``, ``privacy.log_filter``) give the modules of
``ridgeline.privacy`` themselves, with a DeprecationWarning naming the new name.
"""

import sys
import warnings

from ridgeline import privacy as _privacy
from ridgeline.privacy import log_filter as _log_filter
from ridgeline.privacy import masking as _masking

warnings.warn("privacy moved to ridgeline.privacy: import that (its __init__ has the whole public API); "
              "the old name goes in the next release.", DeprecationWarning, stacklevel=2)
sys.modules.update({__name__: _privacy, f"{__name__}.masking": _masking, f"{__name__}.log_filter": _log_filter})

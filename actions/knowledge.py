"""Deprecated: the store knowledge moved to ``ridgeline.knowledge`` (the ground floor), for one release.

``import actions.knowledge`` gives ``ridgeline.knowledge`` itself, and
``python -m actions.knowledge write|check`` runs ``python -m ridgeline.knowledge write|check``;
both warn (DeprecationWarning) with the new name.
"""

import sys
import warnings

from ridgeline import knowledge as _knowledge

_MOVED = ("actions.knowledge moved to ridgeline.knowledge: import that, and run "
          "`python -m ridgeline.knowledge write|check`; the old name goes in the next release.")

if __name__ == "__main__":
    warnings.warn(_MOVED, DeprecationWarning, stacklevel=1)
    sys.exit(_knowledge.main())

warnings.warn(_MOVED, DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _knowledge

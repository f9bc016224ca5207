"""``python -m saliency_lib ...``: see :mod:`saliency_lib.cli`."""

from .cli import main

raise SystemExit(main())

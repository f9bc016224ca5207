"""``python -m saliency_research COMMAND``: the research bench's commands."""

from .cli import main

raise SystemExit(main())

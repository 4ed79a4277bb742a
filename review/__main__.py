"""``python -m review <command>``: see review/cli.py."""

from review.cli import main

raise SystemExit(main())

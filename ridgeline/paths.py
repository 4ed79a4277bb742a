"""Where the checkout is, and the files in it that more than one service reads."""

from __future__ import annotations

from pathlib import Path

# The folder holding ridgeline/: the repository, or /app in the images (which copy it there).
REPO_ROOT = Path(__file__).resolve().parent.parent
STORE_FACTS = REPO_ROOT / "knowledge" / "store.yml"
CATALOG_FILE = REPO_ROOT / "knowledge" / "catalog.csv"
FAQ_DOMAIN_FILE = REPO_ROOT / "rasa_project" / "domain" / "faq.yml"

"""The catalog's generator (``python -m tools.catalog.generate``) and the product-retrieval holdout set.

``knowledge/catalog.csv`` is written by ``generate.py`` from the product families in
``products.py``, with a seeded random generator, so the file is reproducible and ``--check``
can tell when it was edited by hand. ``retrieval_holdout.yml`` holds hand-written visitor
questions with the products that answer them, for measuring product retrieval only.
"""

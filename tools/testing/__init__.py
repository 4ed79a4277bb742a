"""What both the tests and the benchmarks use: the tiny random model (``tools.testing.tiny_model``)."""

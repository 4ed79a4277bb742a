"""Start and stop the whole assistant on one machine: `make run` and the end-to-end tests use it."""

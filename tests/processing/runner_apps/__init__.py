"""Small importable processors and scripts for the runner tests (children import them by path)."""

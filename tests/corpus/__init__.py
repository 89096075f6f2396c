"""Real architectures for the corpus test: third-party (transformers) and hand-written torch models."""

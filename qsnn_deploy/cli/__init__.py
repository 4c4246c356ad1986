"""Command-line tools: ``qsnn-export`` and ``qsnn-verify``."""

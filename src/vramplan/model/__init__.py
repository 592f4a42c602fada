"""Model descriptions: configs, checkpoint files, Hub look-ups and parameter counts."""

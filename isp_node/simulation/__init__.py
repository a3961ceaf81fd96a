"""Synthetic localizer series and their ground truth."""

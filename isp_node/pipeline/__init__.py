"""What a worker does with a completed localizer series."""

"""Model training: the shared trainer (optimiser, schedule, accumulation, Ray Train) and its jobs."""

"""Two-phase training: freezing, optimizers, schedules, precision and distribution."""

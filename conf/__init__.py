# Makes conf/ importable as the package imgcls.conf, so a built wheel carries the configs.

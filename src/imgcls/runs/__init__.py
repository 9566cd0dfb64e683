"""One table across training runs: ``imgcls-runs`` and the multirun callback that write runs.csv."""

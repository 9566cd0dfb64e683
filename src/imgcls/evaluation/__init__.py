"""Test-set evaluation and the files it writes into a run folder."""

"""The ``synth`` family: differentially private synthetic data from owners' tables (MST)."""

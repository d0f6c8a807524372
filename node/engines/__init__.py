"""Compute engines: the MPC and HE ways to run a program (see node.engines.base)."""

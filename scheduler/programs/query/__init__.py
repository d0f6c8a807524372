"""The query family: SQL over owners' tables (plan: parse and check; spec: the MPC program)."""

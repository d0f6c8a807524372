"""The data owner's agent (``dnode owner start``): contributes a dataset to the tasks that
need it, under the owner's policy, crash-safely and exactly once per round.

Modules in flow order: ``config`` (datasets and policies from TOML), ``offer`` (what a task
offers, built from the chain and its params: the seam for on-chain datasets), ``policy``
(the pure accept / pending / reject decision), ``state`` (SQLite: decisions, sharings,
deliveries), ``deliver`` (shares to seats until each acknowledges), ``notices`` (signed
decisions the requester can read), ``agent`` (the daemon that wires them).
"""

"""Secure multi-party computation for dnode.

* :mod:`node.mpc.sharing`  -- data-owner side: parse, encode and Shamir-share inputs
  (pure Python; never imports ``mpyc``, so it has no argv parsing, logging or event-loop
  side effects in the caller's process).
* :mod:`node.mpc.party`    -- ``python -m node.mpc.party job.json``: ONE real MPyC party.
* :mod:`node.mpc.executor` -- trio-side runner that starts a party subprocess for a job.

Importing this package imports nothing heavy; import the submodules you need.
"""

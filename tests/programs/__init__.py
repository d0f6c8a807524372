"""Programs that exist only for tests: each is a spec module plus a kernel module, and runs
through real nodes when ``DNODE_PROGRAMS`` names the spec module (nothing else is edited)."""

"""MPC kernels: the code a program runs inside each MPyC party (it gets ``mpc`` passed in and
must not import mpyc itself: the party imports it before confining itself and setting argv).

A kernel is a module with ``async def run(mpc, secint, x, args) -> dict``: ``x`` is the
secure array ``(rows, width)`` of every owner's rows (shares only), ``args`` the JSON its
spec's ``kernel_args`` produced. It returns the values it opened (JSON: ints and lists of
ints); every party must return the same, which the party process checks.
"""

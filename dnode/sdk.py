"""``dnode.sdk``: the Python SDK (it lives in the CLI layer, :mod:`dnode.cli.sdk`, which the
``dnode`` command is a thin shell over). ``from dnode.sdk import devnet`` gives the local
devnet helper (:mod:`dnode.cli.sdk.devnet`)."""

from __future__ import annotations

from typing import Any

from dnode.cli import sdk as _sdk

__all__ = list(_sdk.__all__)
__doc__ = _sdk.__doc__


def __getattr__(name: str) -> Any:
    return getattr(_sdk, name)

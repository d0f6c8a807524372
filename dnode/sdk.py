"""``dnode.sdk``: the Python SDK (it lives in the CLI layer, :mod:`dnode.cli.sdk`, which the
``dnode`` command is a thin shell over)."""

from dnode.cli.sdk import *  # noqa: F403
from dnode.cli.sdk import __all__, __doc__  # noqa: F401

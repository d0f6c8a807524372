"""dnode: a blockchain-coordinated network for privacy-preserving computation.

The repository keeps the design card's top-level folders (``contracts/ node/ scheduler/
oracle/ cli/``); they install as ``dnode.contracts``, ``dnode.node``, ... (see setup.py), so
nothing named ``node`` or ``cli`` lands in site-packages. Run from a source checkout (the
tests, ``PYTHONPATH=.``, an editable install), those folders sit beside this one: the
package path then also holds the checkout's root, so ``dnode.node`` is ``./node``.
"""

from __future__ import annotations

import os as _os

#: the directory ``dnode`` is imported from: the checkout (source) or site-packages (installed);
#: a child process given it as PYTHONPATH imports this same code
IMPORT_ROOT = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isfile(_os.path.join(IMPORT_ROOT, "node", "daemon.py")) and _os.path.isfile(
    _os.path.join(IMPORT_ROOT, "setup.py")
):
    __path__.append(IMPORT_ROOT)  # noqa: F821 - the package's own __path__ (source checkout)

#: names ``import dnode`` offers without loading them: ``dnode.connect(...)`` imports the SDK
#: (web3, ...) on first use, so ``dnode --help`` stays fast (tests/cli/test_lazy.py)
_SDK_NAMES = ("connect", "Client", "Task", "Result", "SdkError", "programs")


def __getattr__(name: str) -> object:
    if name in _SDK_NAMES:
        from dnode.cli import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'dnode' has no attribute {name!r}")

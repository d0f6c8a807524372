from __future__ import annotations

import os

# MPyC, web3 and friends must not pick up a developer's environment by accident
os.environ.pop("DNODE_PASSWORD", None)

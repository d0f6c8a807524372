"""Packaging glue: the design card's top-level folders install under one ``dnode`` namespace.

``contracts/ node/ scheduler/ oracle/ cli/`` become ``dnode.contracts``, ``dnode.node``, ...;
every sub-package is found automatically (a new program folder needs no edit here).
"""

from setuptools import find_packages, setup

LAYERS = ("contracts", "scheduler", "oracle", "node", "cli")

setup(
    packages=["dnode"]
    + [f"dnode.{p}" for p in find_packages(include=[*LAYERS, *(f"{t}.*" for t in LAYERS)])],
    package_dir={"dnode": "dnode", **{f"dnode.{t}": t for t in LAYERS}},
)

"""HE element-wise polynomials (e.g. a sigmoid approximation)."""

from dnode.scheduler.programs.he import HeSpec
from dnode.scheduler.programs.registry import Arg, register

register(
    HeSpec(
        name="he.poly",
        description="element-wise polynomial, e.g. a sigmoid approximation",
        kernel="dnode.node.he.ops.poly",
        depth="ceil(log2(degree + 1))",
        he_args=(Arg("coeffs", "json", "[c0, c1, ...], degree <= 15", required=True),),
        cost="degree ciphertext products per ciphertext",
    )
)

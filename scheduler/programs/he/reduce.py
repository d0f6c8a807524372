"""HE reductions: sum, mean (optionally along an axis), dot product with plaintext weights."""

from dnode.scheduler.programs.he import HeSpec
from dnode.scheduler.programs.registry import Arg, register

KERNEL = "dnode.node.he.ops.reduce"

for spec in (
    HeSpec(name="he.sum", description="sum of an encrypted tensor", kernel=KERNEL,
           cost="one rotate-and-sum per ciphertext"),
    HeSpec(name="he.mean", description="mean of an encrypted tensor, optionally along an axis",
           kernel=KERNEL, depth="1 (BFV: 0)",
           he_args=(Arg("axis", "json", "null (all), 0 or 1"),),
           cost="one rotate-and-sum per ciphertext, one plaintext product"),
    HeSpec(name="he.dot", description="weighted sum of an encrypted tensor (plaintext weights)",
           kernel=KERNEL, depth="1",
           he_args=(Arg("weights", "json", "same shape as x", required=True),),
           cost="one plaintext product and rotate-and-sum per ciphertext"),
):  # fmt: skip
    register(spec)

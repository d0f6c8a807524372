"""HE element-wise arithmetic with a scalar, a plaintext tensor or a second ciphertext."""

from dnode.scheduler.programs.he import OPERAND, HeSpec
from dnode.scheduler.programs.registry import register

KERNEL = "dnode.node.he.ops.elementwise"

for spec in (
    HeSpec(name="he.add", description="element-wise add of a scalar, plaintext or ciphertext",
           kernel=KERNEL, he_args=(OPERAND,), cost="one addition per ciphertext"),
    HeSpec(name="he.sub", description="element-wise subtract of a scalar, plaintext or ciphertext",
           kernel=KERNEL, he_args=(OPERAND,), cost="one subtraction per ciphertext"),
    HeSpec(name="he.mul", description="element-wise multiply by a scalar, plaintext or ciphertext",
           kernel=KERNEL, depth="1", he_args=(OPERAND,), cost="one product per ciphertext"),
    HeSpec(name="he.div", description="element-wise divide by a scalar or plaintext (CKKS)",
           kernel=KERNEL, depth="1", he_args=(OPERAND,), cost="one product per ciphertext"),
):  # fmt: skip
    register(spec)

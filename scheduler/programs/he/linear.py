"""HE linear layers: encrypted rows times a plaintext matrix, plus bias and activation."""

from dnode.scheduler.programs.he import HeSpec
from dnode.scheduler.programs.registry import Arg, register

register(
    HeSpec(
        name="he.matmul",
        description="encrypted rows x plaintext matrix (+ bias, + polynomial)",
        kernel="dnode.node.he.ops.linear",
        depth="1 + poly",
        he_args=(
            Arg("matrix", "json", "features x outputs", required=True),
            Arg("bias", "json", "one per output, or null"),
            Arg("poly", "json", "activation polynomial coefficients, or null"),
        ),
        cost="one dot product per output column and row",
    )
)

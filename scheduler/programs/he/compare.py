"""HE comparisons (polynomial sign approximation) and indexing of encrypted vectors."""

from dnode.scheduler.programs.he import OPERAND, HeSpec
from dnode.scheduler.programs.registry import Arg, register

KERNEL = "dnode.node.he.ops.compare"

for spec in (
    HeSpec(
        name="he.compare",
        description="x > operand (scalar, plaintext or ciphertext) as ~1/~0, CKKS",
        kernel=KERNEL,
        depth="8 (precision low) or 12 (high)",
        he_args=(
            OPERAND,
            Arg("bound", "json", "a bound on |x - operand| (the approximation's scale)",
                required=True),
            Arg("precision", "str", "low (error 0.107 beyond 0.1 bound) or high (0.0063 "
                "beyond 0.05 bound)", default="low"),
        ),
        cost="2-3 degree-7 polynomials per ciphertext",
    ),
    HeSpec(
        name="he.take",
        description="elements of an encrypted vector at public indices",
        kernel=KERNEL,
        depth="1",
        he_args=(Arg("index", "json", "list of positions", required=True),),
        cost="one plaintext product and rotate-and-sum per index",
    ),
):  # fmt: skip
    register(spec)

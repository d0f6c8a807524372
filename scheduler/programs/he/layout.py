"""HE layout operations (free: they change only the storage-order tag)."""

from scheduler.programs.he import HeSpec
from scheduler.programs.registry import register

register(
    HeSpec(
        name="he.transpose",
        description="transpose of an encrypted matrix",
        kernel="node.he.ops.layout",
        cost="free (flips the storage-order tag)",
    )
)

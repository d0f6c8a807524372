"""HE layout operations (free: they change only the storage-order tag)."""

from dnode.scheduler.programs.he import HeSpec
from dnode.scheduler.programs.registry import register

register(
    HeSpec(
        name="he.transpose",
        description="transpose of an encrypted matrix",
        kernel="dnode.node.he.ops.layout",
        cost="free (flips the storage-order tag)",
    )
)

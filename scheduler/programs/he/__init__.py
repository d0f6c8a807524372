"""Homomorphic-encryption programs: the requester encrypts, the committee evaluates.

One module per op family (``reduce``, ``linear``, ``poly``, ``elementwise``, ``layout``); each
spec names its kernel in ``node.he.ops``. Inputs are the requester's ciphertexts (declared
in ``TaskParams.extra['he']``: digests, sizes, shapes), not table columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dnode.scheduler.errors import InvalidTaskParams
from dnode.scheduler.programs.registry import Arg, ProgramSpec

if TYPE_CHECKING:
    from dnode.scheduler.programs.registry import TaskView


class HeSpec(ProgramSpec):
    capability = "he"
    uses_table = False
    codec = "private"
    supports_rerun = False
    input_types = ()
    reveals = (
        "nothing: the committee evaluates on ciphertexts; the chain gets the result "
        "ciphertext's digest and locator"
    )
    revealed_to = "the requester only (it holds the secret key and decrypts)"
    dp_refusal = ("its input is the requester's own data, encrypted to its own key: nobody "
                  "else's data to protect, and only the requester decrypts the result")  # fmt: skip
    he_args: tuple[Arg, ...] = ()  # documented arguments (travel in extra['he']['args'])
    depth: str = "0"

    def validate(self, params: TaskView) -> None:
        # full validation (security, depth, shapes): node.engines.he.engine.HeEngine.prepare
        if not isinstance(params.extra.get("he"), dict):
            raise InvalidTaskParams("an HE task needs its HE parameters in extra['he']")


OPERAND = Arg(
    "operand",
    "json",
    '{"scalar": v} | {"plain": [...]} | {"input": "y"} (an encrypted second input)',
    required=True,
)

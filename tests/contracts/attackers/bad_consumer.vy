# pragma version 0.4.3
"""
@title Misbehaving dnode consumer for tests
@notice Posts tasks naming itself as callback, then misbehaves in on_task_result according
        to `mode`: 0 records what it saw (including dnode's views, read during the call),
        1 reverts, 2 burns all its gas, 3 returns 64 KiB, 4 re-enters dnode with every
        armed calldata (counting the re-entries that succeeded: there must be none).
"""

from interfaces import IDnodeOracle

RECORD: constant(uint256) = 0
REVERT: constant(uint256) = 1
BURN: constant(uint256) = 2
HUGE: constant(uint256) = 3
REENTER: constant(uint256) = 4

target: public(address)
mode: public(uint256)
armed: public(DynArray[Bytes[1024], 8])
attempts: public(uint256)
succeeded: public(uint256)
calls: public(uint256)
seen_task: public(uint256)
seen_result: public(Bytes[1024])
seen_status: public(uint256)
seen_digest: public(bytes32)
counter: uint256


@deploy
def __init__(target: address):
    self.target = target


@external
@payable
def act(data: Bytes[4096], amount: uint256) -> Bytes[256]:
    """
    @notice Call dnode with `data`, sending `amount` wei.
    """
    return raw_call(self.target, data, value=amount, max_outsize=256)


@external
def arm(mode: uint256, calls: DynArray[Bytes[1024], 8]):
    """
    @notice Choose the misbehaviour (and the re-entry calls of mode 4).
    """
    self.mode = mode
    self.armed = calls


@external
def on_task_result(task_id: uint256, result: Bytes[1024]) -> uint256[2048]:
    """
    @notice The callback, misbehaving as armed.
    """
    self.calls += 1
    if self.mode == REVERT:
        raise "consumer: refusing the result"
    if self.mode == BURN:
        for i: uint256 in range(10**30):
            self.counter += 1
    if self.mode == REENTER:
        for data: Bytes[1024] in self.armed:
            self.attempts += 1
            if raw_call(self.target, data, revert_on_failure=False):
                self.succeeded += 1
    self.seen_task = task_id
    self.seen_result = result
    st: uint256 = 0
    digest: bytes32 = empty(bytes32)
    stored: Bytes[1024] = b""
    st, digest, stored = staticcall IDnodeOracle(self.target).result_of(task_id)
    self.seen_status = st
    self.seen_digest = digest
    return empty(uint256[2048])


@external
@payable
def __default__():
    pass

# pragma version 0.4.3
"""
@title Generic re-entrancy attacker for tests
@notice Acts on dnode with arbitrary calldata (as requester, node or disputer). When it
        receives ETH it re-enters dnode with every armed calldata, swallowing failures and
        counting the re-entries that succeeded (there must be none).
"""

target: public(address)
armed: public(DynArray[Bytes[1024], 8])
attempts: public(uint256)
succeeded: public(uint256)
reject: public(bool)


@deploy
def __init__(target: address):
    self.target = target


@external
@payable
def act(data: Bytes[4096], amount: uint256) -> Bytes[256]:
    """
    @notice Call dnode with `data`, sending `amount` wei from this contract's balance.
    """
    return raw_call(self.target, data, value=amount, max_outsize=256)


@external
def arm(calls: DynArray[Bytes[1024], 8], reject: bool):
    """
    @notice Set the calls to re-enter with on the next payout (and whether to then revert).
    """
    self.armed = calls
    self.reject = reject


@external
@payable
def __default__():
    for data: Bytes[1024] in self.armed:
        self.attempts += 1
        ok: bool = raw_call(self.target, data, value=0, revert_on_failure=False)
        if ok:
            self.succeeded += 1
    assert not self.reject, "attacker: rejecting payment"

# pragma version 0.4.3
"""
@title Reentrancy attacker for tests
@notice Registers as a node, stakes, unbonds, and re-enters dnode.withdraw() from its
        default function while receiving the first payout.
"""

interface Dnode:
    def register(peer_id: String[64], capabilities: uint256): nonpayable
    def stake(): payable
    def unbond(amount: uint256): nonpayable
    def withdraw_unbonded(): nonpayable
    def withdraw(): nonpayable

target: public(Dnode)
swallow: public(bool)
reentries: public(uint256)
reentry_failed: public(bool)


@deploy
def __init__(target: address, swallow: bool):
    self.target = Dnode(target)
    self.swallow = swallow


@external
@payable
def setup(amount: uint256):
    """
    @notice Register, stake msg.value and start unbonding `amount`.
    """
    extcall self.target.register("attacker", 1)
    extcall self.target.stake(value=msg.value)
    extcall self.target.unbond(amount)


@external
def cash_in():
    """
    @notice Move matured unbonding to credits and withdraw (triggering the re-entry).
    """
    extcall self.target.withdraw_unbonded()
    extcall self.target.withdraw()


@external
def attack():
    """
    @notice Withdraw credits (the default function re-enters).
    """
    extcall self.target.withdraw()


@external
@payable
def __default__():
    if self.reentries < 3:
        self.reentries += 1
        if self.swallow:
            # ignore the failed re-entry so the outer withdraw completes: paid exactly once?
            ok: bool = raw_call(
                self.target.address, method_id("withdraw()"), revert_on_failure=False
            )
            if not ok:
                self.reentry_failed = True
        else:
            # bubble the failure up: the outer withdraw must revert as a whole
            extcall self.target.withdraw()

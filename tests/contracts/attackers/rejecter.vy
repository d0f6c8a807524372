# pragma version 0.4.3
"""
@title Contract that refuses ETH, to test the failed-transfer path of withdraw()
"""

interface Dnode:
    def register(peer_id: String[64], capabilities: uint256): nonpayable
    def stake(): payable
    def unbond(amount: uint256): nonpayable
    def withdraw_unbonded(): nonpayable
    def withdraw(): nonpayable

target: Dnode


@deploy
def __init__(target: address):
    self.target = Dnode(target)


@external
@payable
def setup(amount: uint256):
    """
    @notice Register, stake msg.value and unbond `amount`.
    """
    extcall self.target.register("rejecter", 1)
    extcall self.target.stake(value=msg.value)
    extcall self.target.unbond(amount)


@external
def cash_in():
    """
    @notice Move matured unbonding to credits, then try to withdraw.
    """
    extcall self.target.withdraw_unbonded()
    extcall self.target.withdraw()

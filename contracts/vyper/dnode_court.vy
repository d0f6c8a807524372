# pragma version 0.4.3
# pragma optimize codesize
"""
@title dnode court extension
@notice Code-only extension of `dnode`: the litigation functions (see court.vy), executed in
        dnode's storage via DELEGATECALL. Calling this contract directly acts on its own,
        empty storage and moves no one's money.
@dev Initializes exactly the modules `dnode` initializes, in the same order, so the storage
     and transient (reentrancy lock) layouts are identical; tests/contracts checks this.
"""

import registry
import market
import court
import datasets

initializes: registry
initializes: market[registry := registry]
# storage only (run by the dnode_data extension): the layouts of all three must agree
initializes: datasets[registry := registry, market := market]
initializes: court[market := market, registry := registry]

exports: (
    court.dispute,
    court.form_rerun_committee,
    court.report_rerun,
    court.resolve_dispute,
    court.claim_seat,
    court.decline,
    court.cancel,
    # the baked-in parameters, which dnode's constructor checks against its own
    registry.min_stake,
    registry.seat_collateral,
    registry.unbond_delay,
    market.challenge_period,
    market.dispute_bond,
    market.dispute_period,
    market.min_reward,
    market.min_compute_window,
    market.claim_period,
)


@deploy
def __init__(
    min_stake: uint256,
    seat_collateral: uint256,
    unbond_delay: uint256,
    challenge_period: uint256,
    dispute_bond: uint256,
    dispute_period: uint256,
    min_reward: uint256,
    min_compute_window: uint256,
    claim_period: uint256,
):
    """
    @notice Deploy with the same parameters as the `dnode` contract that will use it (the
            immutables are part of the code, so both copies must agree; deploy.py checks).
    """
    registry.__init__(min_stake, seat_collateral, unbond_delay)
    market.__init__(
        challenge_period, dispute_bond, dispute_period, min_reward, min_compute_window, claim_period
    )

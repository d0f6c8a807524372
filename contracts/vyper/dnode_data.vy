# pragma version 0.4.3
# pragma optimize codesize
"""
@title dnode data extension
@notice Code-only extension of `dnode`: the data marketplace (see datasets.vy), executed in
        dnode's storage via DELEGATECALL (dnode routes the selectors in its DATA_SELECTORS
        here, everything else to dnode_court). Calling this contract directly acts on its
        own, empty storage and moves no one's money.
@dev Initializes exactly the modules `dnode` initializes, in the same order, so the storage
     and transient (reentrancy lock) layouts are identical; tests/contracts checks this.
"""

import registry
import market
import datasets

initializes: registry
initializes: market[registry := registry]
initializes: datasets[registry := registry, market := market]

exports: (
    datasets.register_dataset,
    datasets.update_dataset,
    datasets.retire_dataset,
    datasets.post_data_task,
    datasets.settle_datasets,
    datasets.dataset_info,
    datasets.budget_left,
    datasets.task_datasets,
    datasets.dataset_count,
    datasets.data_escrow,
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
            immutables are part of the code, so both copies must agree; dnode checks).
    """
    registry.__init__(min_stake, seat_collateral, unbond_delay)
    market.__init__(
        challenge_period, dispute_bond, dispute_period, min_reward, min_compute_window, claim_period
    )

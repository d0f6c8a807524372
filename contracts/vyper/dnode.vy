# pragma version 0.4.3
"""
@title dnode
@notice The single deployed contract: node registry + compute market + result oracle.
        It holds all money, so balance == escrows + stakes + unbonding + credits.
@dev Composed from the registry, market and oracle modules. Access control lives in the
     modules' asserts: there is no owner/admin; every action is permissionless or bound to
     msg.sender (its own stake/credits/seat).
"""

import registry
import market
import oracle

initializes: registry
initializes: market[registry := registry]
initializes: oracle[registry := registry, market := market]

exports: (
    registry.register,
    registry.stake,
    registry.unbond,
    registry.withdraw_unbonded,
    registry.withdraw,
    registry.node_info,
    registry.node_of_peer,
    registry.is_active,
    registry.credits,
    registry.min_stake,
    registry.seat_collateral,
    registry.unbond_delay,
    market.post_task,
    market.claim_seat,
    market.refund,
    market.task_info,
    market.signers_bitmap,
    market.seat,
    market.seat_index,
    market.task_count,
    oracle.report,
    oracle.finalize,
    oracle.result_of,
    oracle.challenge_period,
)


@deploy
def __init__(
    min_stake: uint256, seat_collateral: uint256, unbond_delay: uint256, challenge_period: uint256
):
    """
    @notice Deploy with the network parameters (all immutable).
    @param min_stake minimum bonded stake for a node to be active
    @param seat_collateral stake locked per committee seat
    @param unbond_delay seconds between unbond() and withdraw_unbonded()
    @param challenge_period seconds between a report and finalize()
    """
    registry.__init__(min_stake, seat_collateral, unbond_delay)
    oracle.__init__(challenge_period)

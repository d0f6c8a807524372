# pragma version 0.4.3
# pragma optimize codesize
"""
@title dnode
@notice The contract that holds all money: node registry + compute market + result oracle,
        with litigation (dispute, form_rerun_committee, report_rerun, resolve_dispute)
        executed from the `dnode_court` extension by DELEGATECALL in this contract's storage.
        At every point balance == escrows + stakes + unbonding + credits + dispute bonds.
@dev Composed from the registry and market modules. Access control lives in one place per
     action (the asserts at the top of each external function); there is no owner/admin:
     every action is permissionless (deadline-driven), bound to msg.sender (its own stake,
     credits or seat), or authorised by the signatures it carries.
"""

import registry
import market

initializes: registry
initializes: market[registry := registry]

from interfaces import IDnodeOracle

implements: IDnodeOracle

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
    registry.seats_held,
    registry.set_terms,
    registry.sync_slots,
    registry.node_terms,
    registry.slot_holder,
    registry.slots_owned,
    registry.slot_count,
    registry.min_stake,
    registry.seat_collateral,
    registry.unbond_delay,
    market.post_task,
    market.result_of,
    market.form_committee,
    market.report,
    market.finalize,
    market.cancel,
    market.decline,
    market.task_status,
    market.tasks,
    market.disputes,
    market.task_count,
    market.challenge_period,
    market.dispute_bond,
    market.dispute_period,
)

# code-only extension holding the litigation functions (contract size, EIP-170)
court: public(immutable(address))


@deploy
def __init__(
    min_stake: uint256,
    seat_collateral: uint256,
    unbond_delay: uint256,
    challenge_period: uint256,
    dispute_bond: uint256,
    dispute_period: uint256,
    _court: address,
):
    """
    @notice Deploy with the network parameters (all immutable).
    @param min_stake minimum bonded stake for a node to be active
    @param seat_collateral stake locked per committee seat, and the amount slashed per seat
    @param unbond_delay seconds between unbond() and withdraw_unbonded()
    @param challenge_period seconds between a report and finalize() (disputes allowed before)
    @param dispute_bond wei a disputer must post
    @param dispute_period seconds a re-execution has to report (its committee must form
           within the first quarter)
    @param _court the dnode_court extension, deployed with the same parameters
    """
    assert _court.is_contract, "dnode: court is not a contract"
    court = _court
    registry.__init__(min_stake, seat_collateral, unbond_delay)
    market.__init__(challenge_period, dispute_bond, dispute_period)


@external
@payable
def __default__():
    """
    @notice Runs the litigation functions (see court.vy) in this contract's storage; any other
            call, including plain ETH transfers, reverts.
    @dev The extension's functions carry their own @nonreentrant, which shares this
         contract's lock (same transient slot); revert reasons bubble up unchanged.
    """
    raw_call(court, msg.data, max_outsize=0, is_delegate_call=True)

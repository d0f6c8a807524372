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
    market.cosign,
    market.finalize,
    market.task_status,
    market.tasks,
    market.disputes,
    market.task_count,
    market.challenge_period,
    market.dispute_bond,
    market.dispute_period,
    market.min_reward,
    market.min_compute_window,
    market.claim_period,
)

# code-only extension holding the litigation functions (contract size, EIP-170)
court: public(immutable(address))


interface CourtParams:
    def min_stake() -> uint256: view
    def seat_collateral() -> uint256: view
    def unbond_delay() -> uint256: view
    def challenge_period() -> uint256: view
    def dispute_bond() -> uint256: view
    def dispute_period() -> uint256: view
    def min_reward() -> uint256: view
    def min_compute_window() -> uint256: view
    def claim_period() -> uint256: view


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
    @param min_reward smallest reward a task may escrow
    @param min_compute_window smallest compute window (formation to report deadline)
    @param claim_period seconds skipped candidates have to claim their seats after a
           formation that skipped them
    @param _court the dnode_court extension, deployed with the same parameters (checked
           here: its immutables are baked into its code)
    """
    assert _court.is_contract, "dnode: court is not a contract"
    c: CourtParams = CourtParams(_court)
    assert (
        staticcall c.min_stake() == min_stake
        and staticcall c.seat_collateral() == seat_collateral
        and staticcall c.unbond_delay() == unbond_delay
        and staticcall c.challenge_period() == challenge_period
        and staticcall c.dispute_bond() == dispute_bond
        and staticcall c.dispute_period() == dispute_period
        and staticcall c.min_reward() == min_reward
        and staticcall c.min_compute_window() == min_compute_window
        and staticcall c.claim_period() == claim_period
    ), "dnode: court parameters differ"
    court = _court
    registry.__init__(min_stake, seat_collateral, unbond_delay)
    market.__init__(
        challenge_period, dispute_bond, dispute_period, min_reward, min_compute_window, claim_period
    )


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

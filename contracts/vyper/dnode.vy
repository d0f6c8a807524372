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
import datasets

initializes: registry
initializes: market[registry := registry]
# storage only (its functions run in the dnode_data extension): the layouts must agree
initializes: datasets[registry := registry, market := market]

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

# code-only extensions (contract size, EIP-170): litigation, and the data marketplace
court: public(immutable(address))
data: public(immutable(address))

# the functions of dnode_data, which __default__ routes there (tests/contracts checks the set)
SEL_REGISTER: constant(bytes4) = method_id(
    "register_dataset(bytes32,uint256,uint256,uint256,bytes32[],uint256,uint256,string)",
    output_type=bytes4,
)
SEL_UPDATE: constant(bytes4) = method_id(
    "update_dataset(uint256,uint256,uint256,bytes32[],string)", output_type=bytes4
)
SEL_RETIRE: constant(bytes4) = method_id("retire_dataset(uint256)", output_type=bytes4)
SEL_POST: constant(bytes4) = method_id(
    "post_data_task(bytes32,bytes32,uint256,uint256,uint256,uint256,uint256,uint256[],uint256[])",
    output_type=bytes4,
)
SEL_SETTLE: constant(bytes4) = method_id(
    "settle_datasets(uint256,(address,uint256,bytes32,uint256,uint256,address[],uint256,bytes32))",
    output_type=bytes4,
)
SEL_INFO: constant(bytes4) = method_id("dataset_info(uint256)", output_type=bytes4)
SEL_LEFT: constant(bytes4) = method_id("budget_left(uint256)", output_type=bytes4)
SEL_TASK_SETS: constant(bytes4) = method_id("task_datasets(uint256)", output_type=bytes4)
SEL_COUNT: constant(bytes4) = method_id("dataset_count()", output_type=bytes4)
SEL_ESCROW: constant(bytes4) = method_id("data_escrow()", output_type=bytes4)
MAX_RETURN: constant(uint256) = 2048  # largest return: dataset_info with 16 programs


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
    _data: address,
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
    @param _data the dnode_data extension, deployed with the same parameters (checked too)
    """
    for ext: address in [_court, _data]:
        self._check_extension(ext, min_stake, seat_collateral, unbond_delay, challenge_period,
            dispute_bond, dispute_period, min_reward, min_compute_window, claim_period)
    court = _court
    data = _data
    registry.__init__(min_stake, seat_collateral, unbond_delay)
    market.__init__(
        challenge_period, dispute_bond, dispute_period, min_reward, min_compute_window, claim_period
    )


@internal
@view
def _check_extension(
    ext: address,
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
    assert ext.is_contract, "dnode: extension is not a contract"
    c: CourtParams = CourtParams(ext)
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
    ), "dnode: extension parameters differ"


@external
@payable
def __default__() -> Bytes[MAX_RETURN]:
    """
    @notice Runs the data marketplace functions (see datasets.vy) and the litigation
            functions (see court.vy) in this contract's storage; any other call, including
            plain ETH transfers, reverts.
    @return what the extension returned, ABI-encoded once more as `bytes` (Vyper 0.4.3 has
            no raw return): the manifest's ABI declares the data functions as returning
            `bytes`, whose content decodes with dnode_data's ABI (contracts/client.py).
    @dev The extensions' functions carry their own @nonreentrant, which shares this
         contract's lock (same transient slot); revert reasons bubble up unchanged.
    """
    sel: bytes4 = convert(slice(msg.data, 0, 4), bytes4)
    target: address = court
    if (
        sel == SEL_REGISTER
        or sel == SEL_UPDATE
        or sel == SEL_RETIRE
        or sel == SEL_POST
        or sel == SEL_SETTLE
        or sel == SEL_INFO
        or sel == SEL_LEFT
        or sel == SEL_TASK_SETS
        or sel == SEL_COUNT
        or sel == SEL_ESCROW
    ):
        target = data
    out: Bytes[MAX_RETURN] = raw_call(
        target, msg.data, max_outsize=MAX_RETURN, is_delegate_call=True
    )
    return out

# pragma version 0.4.3
"""
@title dnode litigation: disputes and re-execution
@notice Within a task's challenge window the requester or any staked node may dispute its
        report by posting a bond; a larger committee, disjoint from the first, re-executes
        the task and its result settles the dispute (slashing the original signers if it
        differs, paying them the bond if it agrees).
@dev Split out of `market` only for contract size (EIP-170): these functions are compiled into
     the `dnode_court` extension, which `dnode` reaches by DELEGATECALL from `__default__`
     (the pattern of Yearn v3's TokenizedStrategy). Both contracts initialize the same modules
     in the same order, so they share one storage layout and one reentrancy lock; the
     extension holds no money and its own storage is never used.
"""

import market
import registry

uses: market
uses: registry


@external
@payable
@nonreentrant
def dispute(task_id: uint256, t: market.Task):
    """
    @notice Challenge a reported result within the challenge window by posting exactly
            `dispute_bond`. A re-execution committee of m + 2 seats, disjoint from the first
            committee, must then form by now + market.dispute_period // 4 and report by
            now + market.dispute_period.
    @dev Only the requester or a staked node (registered, stake >= min_stake) may dispute.
    @param task_id task whose report is disputed
    @param t the task record
    """
    assert market._load(task_id, t) == market.REPORTED, "market: not reported"
    reported_at: uint256 = market._get(t.meta, market.REPORTED_AT_OFF, 64)
    assert block.timestamp < reported_at + market.challenge_period, "market: challenge window closed"
    assert msg.sender == t.requester or registry._is_staked(msg.sender), (
        "market: disputer not requester or staked node"
    )
    assert msg.value == market.dispute_bond, "market: wrong bond"
    seat_dl: uint256 = block.timestamp + market.dispute_period // 4
    report_dl: uint256 = block.timestamp + market.dispute_period
    d: market.Dispute = market.Dispute(
        disputer=msg.sender,
        meta=(
            (seat_dl << market.D_SEAT_DL_OFF)
            | (report_dl << market.D_REPORT_DL_OFF)
            | ((block.number + 1) << market.D_SEED_OFF)
        ),
        committee=[],
        result_digest=empty(bytes32),
    )
    market.disputes[task_id] = market._dispute_hash(d)
    market._set_status(task_id, market.DISPUTED)
    log market.TaskDisputed(
        task_id=task_id,
        disputer=msg.sender,
        bond=msg.value,
        seat_deadline=seat_dl,
        report_deadline=report_dl,
    )


@external
@nonreentrant
def form_rerun_committee(
    task_id: uint256,
    t: market.Task,
    d: market.Dispute,
    members: DynArray[address, market.MAX_SEATS],
    sigs: Bytes[market.SIGS_BYTES],
    draws: DynArray[uint256, market.MAX_SEATS],
):
    """
    @notice Bind the re-execution committee of a disputed task (m + 2 seats) in one
            transaction; members sign the join intent with round = 1.
    @dev Members must be disjoint from the original committee and differ from the requester
         and the disputer; the same eligibility, collateral and sortition rules as
         form_committee apply (round 1, seeded by the block after the dispute; no price check:
         the re-execution is not paid from the reward).
    @param task_id disputed task
    @param t the task record
    @param d the dispute record
    @param members the m + 2 seat holders, in seat order
    @param sigs join signatures, aligned with members
    @param draws the sortition draw index each member claims, aligned with members
    """
    assert market._load(task_id, t) == market.DISPUTED, "market: not disputed"
    market._load_dispute(task_id, d)
    assert block.timestamp <= market._get(d.meta, market.D_SEAT_DL_OFF, 64), "market: seat deadline passed"
    excluded: DynArray[address, market.MAX_SEATS] = t.committee
    excluded.append(t.requester)
    excluded.append(d.disputer)
    market._bind_committee(
        task_id,
        1,
        len(t.committee) + market.RERUN_EXTRA,
        market._get(t.meta, market.CAP_OFF, 8),
        members,
        sigs,
        excluded,
        draws,
        market._get(d.meta, market.D_SEED_OFF, 64),
        max_value(uint256),
    )
    nd: market.Dispute = d
    nd.committee = members
    market.disputes[task_id] = market._dispute_hash(nd)
    market._set_status(task_id, market.RECOMPUTING)
    log market.CommitteeFormed(task_id=task_id, round=1, members=members)


@external
@nonreentrant
def report_rerun(
    task_id: uint256,
    t: market.Task,
    d: market.Dispute,
    result: Bytes[1024],
    sigs: Bytes[market.SIGS_BYTES],
):
    """
    @notice Submit the re-execution committee's result (quorum of its m + 2 seats, same
            signature format as report) and settle the dispute at once.
    @dev Same digest as the original report: the original signers are paid the reward plus
         the disputer's bond (market.UPHELD, status market.FINALIZED). Different digest: each original
         signer is slashed one seat_collateral; half of the slashed total (rounded down) and
         the bond go to the disputer, the reward and the other half to the requester
         (market.REVERSED, status market.OVERTURNED). The re-execution seats are unlocked either way.
         A consumer callback runs only when the result stands (FINALIZED); an overturned
         task's consumer gets no call, result_of serves the re-execution's result.
    @param task_id disputed task
    @param t the task record
    @param d the dispute record
    @param result the re-execution result bytes (emitted)
    @param sigs signatures of the re-execution committee
    """
    assert market._load(task_id, t) == market.RECOMPUTING, "oracle: not recomputing"
    market._load_dispute(task_id, d)
    assert block.timestamp <= market._get(d.meta, market.D_REPORT_DL_OFF, 64), (
        "oracle: report deadline passed"
    )
    declined: uint256 = market._get(d.meta, market.D_DECLINED_OFF, 32)
    bitmap: uint256 = market._check_signatures(task_id, result, sigs, d.committee, declined)
    digest: bytes32 = keccak256(result)
    nd: market.Dispute = d
    nd.meta = market._put(d.meta, market.D_SIGNERS_OFF, 32, bitmap)
    nd.result_digest = digest
    market.disputes[task_id] = market._dispute_hash(nd)
    log market.ResultReported(
        task_id=task_id, round=1, result=result, signers_bitmap=bitmap, reported_at=block.timestamp
    )
    market._release_rerun(d, declined)
    signers: uint256 = market._get(t.meta, market.SIGNERS_OFF, 16)
    t_declined: uint256 = market._get(t.meta, market.DECLINED_OFF, 16)
    if digest == t.result_digest:
        market._set_status(task_id, market.FINALIZED)
        share: uint256 = 0
        extra: uint256 = 0
        share, extra = market._pay_signers(t.committee, signers, t_declined, t.reward, market.dispute_bond)
        log market.DisputeResolved(
            task_id=task_id, outcome=market.UPHELD, slashed_seats=0, to_disputer=0, to_requester=0
        )
        log market.TaskFinalized(task_id=task_id, share=share, extra_share=extra)
        market._deliver(task_id, t.ext)
        return
    market._set_status(task_id, market.OVERTURNED)
    if t.ext & market.ADDR_MASK != 0:
        market.results[task_id] = result  # result_of now serves the re-execution's result
    slashed: uint256 = 0
    for i: uint256 in range(len(t.committee), bound=market.MAX_SEATS):
        bit: uint256 = 1 << i
        node: address = t.committee[i]
        if signers & bit != 0:
            amount: uint256 = registry._slash_seat(node)
            log market.Slashed(node=node, task_id=task_id, amount=amount)
            slashed += 1
        elif t_declined & bit == 0:
            registry._release_seat(node, 0)
    total: uint256 = slashed * registry.seat_collateral
    to_disputer: uint256 = total // 2 + market.dispute_bond
    to_requester: uint256 = total - total // 2 + t.reward
    registry._credit(d.disputer, to_disputer)
    registry._credit(t.requester, to_requester)
    log market.DisputeResolved(
        task_id=task_id,
        outcome=market.REVERSED,
        slashed_seats=slashed,
        to_disputer=to_disputer,
        to_requester=to_requester,
    )


@external
@nonreentrant
def resolve_dispute(task_id: uint256, t: market.Task, d: market.Dispute):
    """
    @notice Settle a dispute whose re-execution did not happen: the original result stands
            (market.FINALIZED, reward to its signers, consumer called back) and the bond
            returns to the disputer.
    @dev market.DISPUTED after the re-execution seat deadline (no committee formed): nobody slashed.
         market.RECOMPUTING after the re-execution report deadline: every re-execution seat that
         did not decline is slashed one seat_collateral, paid to the original signers with
         the reward. market.RECOMPUTING with so many declines that no quorum is possible: at once,
         nobody slashed.
    @param task_id disputed task
    @param t the task record
    @param d the dispute record
    """
    status: uint256 = market._load(task_id, t)
    assert status == market.DISPUTED or status == market.RECOMPUTING, "market: no dispute to resolve"
    market._load_dispute(task_id, d)
    slashed: uint256 = 0
    if status == market.DISPUTED:
        assert block.timestamp > market._get(d.meta, market.D_SEAT_DL_OFF, 64), (
            "market: re-execution seating open"
        )
    elif status == market.RECOMPUTING:
        m2: uint256 = len(d.committee)
        declined: uint256 = market._get(d.meta, market.D_DECLINED_OFF, 32)
        if market._popcount(declined) > m2 - (m2 // 2 + 1):
            market._release_rerun(d, declined)
        else:
            assert block.timestamp > market._get(d.meta, market.D_REPORT_DL_OFF, 64), (
                "market: re-execution still due"
            )
            slashed = market._slash_undelivered(task_id, d.committee, declined)
    else:
        raise "market: no dispute to resolve"
    market._set_status(task_id, market.FINALIZED)
    share: uint256 = 0
    extra: uint256 = 0
    share, extra = market._pay_signers(
        t.committee,
        market._get(t.meta, market.SIGNERS_OFF, 16),
        market._get(t.meta, market.DECLINED_OFF, 16),
        t.reward,
        slashed * registry.seat_collateral,
    )
    registry._credit(d.disputer, market.dispute_bond)
    log market.DisputeResolved(
        task_id=task_id,
        outcome=market.RERUN_FAILED,
        slashed_seats=slashed,
        to_disputer=market.dispute_bond,
        to_requester=0,
    )
    log market.TaskFinalized(task_id=task_id, share=share, extra_share=extra)
    market._deliver(task_id, t.ext)

# pragma version 0.4.3
"""
@title dnode litigation: disputes and re-execution
@notice Within a task's challenge window the requester or any staked node may dispute its
        report by posting a bond; a larger committee, disjoint from the first, re-executes
        the task and its result settles the dispute: a differing result replaces the
        original one (whose signers go unpaid but are never slashed: the re-execution runs
        on inputs the owners contribute again, not bound to round 0's, so a difference is
        no evidence against them), an agreeing one pays them.
@dev Money of a dispute (docs/protocol.md, "Litigation"): W = the task's reward, B = the
     deployment's dispute_bond, bond = max(B, W). The re-execution's signers are paid W
     whichever way they vote; a re-execution that produces no result costs the disputer
     min(W, B) (less what silent re-execution seats were slashed), paid to the original
     signers for the delay. Only seats that neither reported nor declined by a deadline
     are slashed.
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
@nonreentrant
def cancel(task_id: uint256, t: market.Task):
    """
    @notice Refund a task whose committee missed a deadline (anyone may call; the escrow
            always goes to the requester's credits).
    @dev market.OPEN after seat_deadline ("sortition: seats not filled"), or more than 256 blocks
         after the seed block, whose hash the sortition can no longer read ("sortition: seed
         expired"): full refund. market.COMPUTING after report_deadline: full refund and every seat
         that neither reported nor declined is slashed one seat_collateral, which is burned
         (credited to the zero address): a requester never profits from its committee's
         silence. market.COMPUTING when so many seats declined that no quorum is possible: full
         refund at once, nobody slashed.
    @param task_id task to cancel
    @param t the task record
    """
    status: uint256 = market._load(task_id, t)
    slashed: uint256 = 0
    reason: String[32] = ""
    if status == market.OPEN:
        if block.number > (t.ext >> market.SEED_BLOCK_OFF) + market.SEED_LIFETIME:
            reason = "sortition: seed expired"
        else:
            assert block.timestamp > market._get(t.meta, market.SEAT_DL_OFF, 40), (
                "market: seating still open"
            )
            reason = "sortition: seats not filled"
    elif status == market.COMPUTING:
        m: uint256 = len(t.committee)
        declined: uint256 = market._get(t.meta, market.DECLINED_OFF, 16)
        if market._popcount(declined) > m - (m // 2 + 1):
            for i: uint256 in range(m, bound=market.MAX_SEATS):
                if declined & (1 << i) == 0:
                    registry._release_seat(t.committee[i], 0)
            reason = "market: too many declines"
        else:
            assert block.timestamp > market._get(t.meta, market.REPORT_DL_OFF, 40), (
                "market: report still due"
            )
            slashed = market._slash_undelivered(task_id, t.committee, declined)
            registry._credit(market.BURN, slashed * registry.seat_collateral)
            reason = "market: report deadline missed"
    else:
        raise "market: not cancellable"
    market._set_status(task_id, market.REFUNDED)
    registry._credit(t.requester, t.reward)
    log market.TaskRefunded(
        task_id=task_id, requester=t.requester, amount=t.reward, slashed_seats=slashed, reason=reason
    )


@external
@payable
@nonreentrant
def dispute(task_id: uint256, t: market.Task):
    """
    @notice Challenge a reported result within the challenge window by posting exactly
            max(dispute_bond, reward). A re-execution committee of m + 2 seats, disjoint
            from the first, formed by the same ranked sortition (seeded by the next block, drawn over the slot
            count now), must then form by now + dispute_period // 4 and report by
            now + dispute_period.
    @dev Only the requester or a staked node (registered, stake >= min_stake) may dispute.
         HE tasks cannot be disputed: nodes do not re-execute HE programs.
    @param task_id task whose report is disputed
    @param t the task record
    """
    assert market._load(task_id, t) == market.REPORTED, "market: not reported"
    assert market._get(t.meta, market.CAP_OFF, 8) != registry.HE, "court: HE tasks are not re-executed"
    reported_at: uint256 = market._get(t.meta, market.REPORTED_AT_OFF, 40)
    assert block.timestamp < reported_at + market.challenge_period, "market: challenge window closed"
    assert msg.sender == t.requester or registry._is_staked(msg.sender), (
        "market: disputer not requester or staked node"
    )
    assert msg.value == self._bond(t), "market: wrong bond"
    seat_dl: uint256 = block.timestamp + market.dispute_period // 4
    report_dl: uint256 = block.timestamp + market.dispute_period
    snapshot: uint256 = min(registry.slot_count, (1 << 40) - 1)
    d: market.Dispute = market.Dispute(
        disputer=msg.sender,
        meta=(
            (seat_dl << market.D_SEAT_DL_OFF)
            | (report_dl << market.D_REPORT_DL_OFF)
            | ((block.number + 1) << market.D_SEED_OFF)
            | (snapshot << market.D_SNAPSHOT_OFF)
        ),
        committee=[],
        draws=0,
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
        seed_block=block.number + 1,
        slot_snapshot=snapshot,
    )


@internal
@view
def _bond(t: market.Task) -> uint256:
    """What a disputer posts: max(dispute_bond, reward), so the bond can always pay the
    re-execution the task's reward (its pay does not depend on its vote)."""
    return max(market.dispute_bond, t.reward)


@internal
@view
def _rerun_excluded(t: market.Task, d: market.Dispute) -> DynArray[address, market.MAX_SEATS]:
    excluded: DynArray[address, market.MAX_SEATS] = t.committee
    excluded.append(t.requester)
    excluded.append(d.disputer)
    return excluded


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
         and the disputer; the same consent, eligibility, collateral and RANKED sortition
         rules as form_committee apply (round 1, seeded by the block after the dispute,
         drawn over the slot count at the dispute, skip budget counted from the dispute).
         The offer a member's price must not exceed is reward // (m + 2): the re-execution
         is paid the reward whatever its result.
    @param task_id disputed task
    @param t the task record
    @param d the dispute record
    @param members the m + 2 seat holders, in seat order
    @param sigs join signatures, aligned with members
    @param draws the first sortition draw of each member, aligned with members
    """
    assert market._load(task_id, t) == market.DISPUTED, "market: not disputed"
    market._load_dispute(task_id, d)
    seat_dl: uint256 = market._get(d.meta, market.D_SEAT_DL_OFF, 40)
    assert block.timestamp <= seat_dl, "market: seat deadline passed"
    size: uint256 = len(t.committee) + market.RERUN_EXTRA
    packed: uint256 = 0
    skips: uint256 = 0
    packed, skips = market._bind_committee(
        task_id,
        1,
        size,
        market._get(t.meta, market.CAP_OFF, 8),
        members,
        sigs,
        self._rerun_excluded(t, d),
        draws,
        market._get(d.meta, market.D_SEED_OFF, 40),
        market._get(d.meta, market.D_SNAPSHOT_OFF, 40),
        t.reward // size,
        seat_dl - market.dispute_period // 4,
    )
    claims_until: uint256 = 0
    nd: market.Dispute = d
    if skips > 0:
        claims_until = block.timestamp + market.claim_period
        nd.meta = market._put(
            market._put(d.meta, market.D_SKIPS_OFF, 8, skips), market.D_CLAIMS_OFF, 40, claims_until
        )
    nd.committee = members
    nd.draws = packed
    market.disputes[task_id] = market._dispute_hash(nd)
    market._set_status(task_id, market.RECOMPUTING)
    log market.CommitteeFormed(
        task_id=task_id,
        round=1,
        members=members,
        draws=packed,
        skips=skips,
        report_deadline=market._get(d.meta, market.D_REPORT_DL_OFF, 40),
        claims_until=claims_until,
    )


@external
@nonreentrant
def decline(task_id: uint256, t: market.Task, d: market.Dispute, reason: String[128]):
    """
    @notice A seat holder that cannot run the task gives up its seat before the report
            deadline, stating why; its collateral is unlocked and it is never slashed for it.
    @dev Works for the original committee (status market.COMPUTING; `d` is ignored) and for the
         re-execution committee (status market.RECOMPUTING; `d` must be the dispute record).
    @param task_id task
    @param t the task record
    @param d the dispute record (any value when not disputed)
    @param reason failure-indicating message (emitted)
    """
    status: uint256 = market._load(task_id, t)
    idx: uint256 = market.NOT_SEATED
    round: uint256 = 0
    if status == market.COMPUTING:
        assert block.timestamp <= market._get(t.meta, market.REPORT_DL_OFF, 40), (
            "market: report deadline passed"
        )
        for i: uint256 in range(len(t.committee), bound=market.MAX_SEATS):
            if t.committee[i] == msg.sender:
                idx = i
                break
        assert idx != market.NOT_SEATED, "market: not a seat holder"
        declined: uint256 = market._get(t.meta, market.DECLINED_OFF, 16)
        assert declined & (1 << idx) == 0, "market: already declined"
        nt: market.Task = t
        nt.meta = market._put(t.meta, market.DECLINED_OFF, 16, declined | (1 << idx))
        market._store(task_id, nt, market.COMPUTING)
    elif status == market.RECOMPUTING:
        market._load_dispute(task_id, d)
        assert block.timestamp <= market._get(d.meta, market.D_REPORT_DL_OFF, 40), (
            "market: report deadline passed"
        )
        for i: uint256 in range(len(d.committee), bound=market.MAX_SEATS):
            if d.committee[i] == msg.sender:
                idx = i
                break
        assert idx != market.NOT_SEATED, "market: not a seat holder"
        declined: uint256 = market._get(d.meta, market.D_DECLINED_OFF, 24)
        assert declined & (1 << idx) == 0, "market: already declined"
        nd: market.Dispute = d
        nd.meta = market._put(d.meta, market.D_DECLINED_OFF, 24, declined | (1 << idx))
        market.disputes[task_id] = market._dispute_hash(nd)
        round = 1
    else:
        raise "market: not computing"
    registry._release_seat(msg.sender, 0)
    log market.SeatDeclined(task_id=task_id, node=msg.sender, round=round, seat=idx, reason=reason)


@external
@nonreentrant
def claim_seat(task_id: uint256, t: market.Task, d: market.Dispute, draw: uint256):
    """
    @notice A candidate the formation skipped takes its seat back: during the claim period
            after a formation that skipped someone, the holder of a draw ranked above the
            committee's worst-ranked member displaces that member (whose collateral is
            unlocked, never slashed). So skipping an online honest candidate gains nothing.
    @dev Works for the committee (status COMPUTING, round 0; `d` is ignored) and the
         re-execution committee (RECOMPUTING, round 1). The caller consents by sending the
         transaction and must pass the per-seat eligibility check; each claim uses up one of
         the formation's skips, and the claim period ends early when none is left.
    @param task_id task
    @param t the task record
    @param d the dispute record (any value for round 0)
    @param draw the caller's draw index, ranked above the worst member's
    """
    status: uint256 = market._load(task_id, t)
    round: uint256 = 0
    committee: DynArray[address, market.MAX_SEATS] = t.committee
    packed: uint256 = t.draws
    meta: uint256 = t.meta
    excluded: DynArray[address, market.MAX_SEATS] = [t.requester]
    size: uint256 = len(t.committee)
    if status == market.COMPUTING:
        skips: uint256 = market._get(meta, market.SKIPS_OFF, 8)
        assert skips > 0, "market: no skipped seats"
        assert block.timestamp < market._get(meta, market.REPORTED_AT_OFF, 40), "market: claim period over"
        meta = market._put(meta, market.SKIPS_OFF, 8, skips - 1)
    elif status == market.RECOMPUTING:
        market._load_dispute(task_id, d)
        round = 1
        committee = d.committee
        packed = d.draws
        meta = d.meta
        excluded = self._rerun_excluded(t, d)
        size = len(d.committee)
        skips: uint256 = market._get(meta, market.D_SKIPS_OFF, 8)
        assert skips > 0, "market: no skipped seats"
        assert block.timestamp < market._get(meta, market.D_CLAIMS_OFF, 40), "market: claim period over"
        meta = market._put(meta, market.D_SKIPS_OFF, 8, skips - 1)
    else:
        raise "market: no seats to claim"
    seed_block: uint256 = t.ext >> market.SEED_BLOCK_OFF
    snapshot: uint256 = market._get(t.meta, market.SNAPSHOT_OFF, 40)
    offer: uint256 = t.reward // size  # a re-execution seat is paid from the same reward
    declined_off: uint256 = market.DECLINED_OFF
    if round == 1:
        seed_block = market._get(d.meta, market.D_SEED_OFF, 40)
        snapshot = market._get(d.meta, market.D_SNAPSHOT_OFF, 40)
        declined_off = market.D_DECLINED_OFF
    seed: bytes32 = market._seed(seed_block)
    assert market._drawn(seed, task_id, round, draw, snapshot) == msg.sender, "sortition: claimant not drawn"
    assert not market._has(committee, msg.sender), "market: already seated"
    assert not market._has(excluded, msg.sender), "market: member not eligible"
    worst: uint256 = 0
    worst_draw: uint256 = 0
    for i: uint256 in range(size, bound=market.MAX_SEATS):
        di: uint256 = (packed >> (market.DRAW_BITS * i)) & market.MAX_DRAW
        if di > worst_draw:
            worst_draw = di
            worst = i
    assert draw < worst_draw, "sortition: claimant ranked below the committee"
    registry._lock_seat(msg.sender, market._get(t.meta, market.CAP_OFF, 8), offer)
    displaced: address = committee[worst]
    bit: uint256 = 1 << (declined_off + worst)
    if meta & bit != 0:
        meta &= ~bit  # the displaced seat had declined: its collateral is already free
    else:
        registry._release_seat(displaced, 0)
    committee[worst] = msg.sender
    packed = market._put(packed, market.DRAW_BITS * worst, market.DRAW_BITS, draw)
    if round == 0:
        nt: market.Task = t
        nt.meta = meta
        nt.committee = committee
        nt.draws = packed
        market._store(task_id, nt, market.COMPUTING)
    else:
        nd: market.Dispute = d
        nd.meta = meta
        nd.committee = committee
        nd.draws = packed
        market.disputes[task_id] = market._dispute_hash(nd)
    log market.SeatClaimed(
        task_id=task_id, node=msg.sender, round=round, seat=worst, draw=draw, displaced=displaced
    )


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
            signature format as report) and settle the dispute at once. Its signers are
            paid the task's reward W either way, so their vote does not change their pay.
    @dev Same digest as the original report (market.UPHELD, status FINALIZED): the bond pays
         the re-execution signers W and the original signers the rest (bond - W, nothing
         when W >= dispute_bond) on top of the reward. Different digest (market.REVERSED,
         status OVERTURNED): the re-execution's result replaces the original one and the
         requester's reward pays the re-execution signers (they produced the result it
         gets); the original seats are released, unpaid and NOT slashed; the disputer gets
         its bond back; nothing is burned and nothing goes back to the requester. No
         slashing rests on a differing result: the re-execution computes on inputs the data
         owners contribute again (fresh shares, not bound to round 0's), so an owner that
         changes its values makes an honest result "differ" (docs/protocol.md, "Disputes
         and committed inputs"). A consumer callback runs only when the result stands; an
         overturned task's consumer gets no call, result_of serves the re-execution's result.
    @param task_id disputed task
    @param t the task record
    @param d the dispute record
    @param result the re-execution result bytes (emitted)
    @param sigs signatures of the re-execution committee
    """
    assert market._load(task_id, t) == market.RECOMPUTING, "oracle: not recomputing"
    market._load_dispute(task_id, d)
    assert block.timestamp <= market._get(d.meta, market.D_REPORT_DL_OFF, 40), (
        "oracle: report deadline passed"
    )
    if market._get(d.meta, market.D_SKIPS_OFF, 8) > 0:
        assert block.timestamp >= market._get(d.meta, market.D_CLAIMS_OFF, 40), (
            "oracle: seat claims still open"
        )
    declined: uint256 = market._get(d.meta, market.D_DECLINED_OFF, 24)
    digest: bytes32 = keccak256(result)
    bitmap: uint256 = market._check_signatures(
        market._report_hash(task_id, digest), sigs, d.committee, declined
    )
    nd: market.Dispute = d
    nd.meta = market._put(d.meta, market.D_SIGNERS_OFF, 24, bitmap)
    nd.result_digest = digest
    market.disputes[task_id] = market._dispute_hash(nd)
    log market.ResultReported(
        task_id=task_id, round=1, result=result, signers_bitmap=bitmap, reported_at=block.timestamp
    )
    signers: uint256 = market._get(t.meta, market.SIGNERS_OFF, 16)
    t_declined: uint256 = market._get(t.meta, market.DECLINED_OFF, 16)
    bond: uint256 = self._bond(t)
    market._pay_signers(d.committee, bitmap, declined, t.reward, 0)
    if digest == t.result_digest:
        market._set_status(task_id, market.FINALIZED)
        share: uint256 = 0
        extra: uint256 = 0
        share, extra = market._pay_signers(
            t.committee, signers, t_declined, t.reward, bond - t.reward
        )
        log market.DisputeResolved(
            task_id=task_id,
            outcome=market.UPHELD,
            slashed_seats=0,
            to_disputer=0,
            to_signers=bond,
            to_rerun=t.reward,
        )
        log market.TaskFinalized(task_id=task_id, share=share, extra_share=extra)
        market._deliver(task_id, t.ext)
        return
    market._set_status(task_id, market.OVERTURNED)
    if t.ext & market.ADDR_MASK != 0:
        market.results[task_id] = result  # result_of now serves the re-execution's result
    market._release_seats(t.committee, t_declined)
    registry._credit(d.disputer, bond)
    log market.DisputeResolved(
        task_id=task_id,
        outcome=market.REVERSED,
        slashed_seats=0,
        to_disputer=bond,
        to_signers=0,
        to_rerun=t.reward,
    )


@external
@nonreentrant
def resolve_dispute(task_id: uint256, t: market.Task, d: market.Dispute):
    """
    @notice Settle a dispute whose re-execution produced no result: the original result
            stands (market.FINALIZED, reward to its signers, consumer called back). The
            original signers are paid for the delay: the collateral of re-execution seats
            that stayed silent, topped up from the bond to min(reward, dispute_bond); the
            disputer gets the rest of its bond. So a dispute that never re-executes is not
            free, and a disputer whose re-execution was stalled by silent seats is whole.
    @dev market.DISPUTED after the re-execution seat deadline (no committee formed): nobody
         slashed. market.RECOMPUTING after the re-execution report deadline: every
         re-execution seat that did not decline is slashed one seat_collateral (sound: it
         neither reported nor declined). market.RECOMPUTING with so many declines that no
         quorum is possible: at once, nobody slashed.
    @param task_id disputed task
    @param t the task record
    @param d the dispute record
    """
    status: uint256 = market._load(task_id, t)
    assert status == market.DISPUTED or status == market.RECOMPUTING, "market: no dispute to resolve"
    market._load_dispute(task_id, d)
    slashed: uint256 = 0
    if status == market.DISPUTED:
        assert block.timestamp > market._get(d.meta, market.D_SEAT_DL_OFF, 40), (
            "market: re-execution seating open"
        )
    else:
        m2: uint256 = len(d.committee)
        declined: uint256 = market._get(d.meta, market.D_DECLINED_OFF, 24)
        if market._popcount(declined) > m2 - (m2 // 2 + 1):
            market._release_seats(d.committee, declined)
        else:
            assert block.timestamp > market._get(d.meta, market.D_REPORT_DL_OFF, 40), (
                "market: re-execution still due"
            )
            slashed = market._slash_undelivered(task_id, d.committee, declined)
    market._set_status(task_id, market.FINALIZED)
    collateral: uint256 = slashed * registry.seat_collateral
    fee: uint256 = min(t.reward, market.dispute_bond)
    fee -= min(fee, collateral)
    to_disputer: uint256 = self._bond(t) - fee
    share: uint256 = 0
    extra: uint256 = 0
    share, extra = market._pay_signers(
        t.committee,
        market._get(t.meta, market.SIGNERS_OFF, 16),
        market._get(t.meta, market.DECLINED_OFF, 16),
        t.reward,
        collateral + fee,
    )
    registry._credit(d.disputer, to_disputer)
    log market.DisputeResolved(
        task_id=task_id,
        outcome=market.RERUN_FAILED,
        slashed_seats=slashed,
        to_disputer=to_disputer,
        to_signers=t.reward + collateral + fee,
        to_rerun=0,
    )
    log market.TaskFinalized(task_id=task_id, share=share, extra_share=extra)
    market._deliver(task_id, t.ext)

# pragma version 0.4.3
"""
@title dnode compute market and result oracle
@notice Requesters post tasks with escrowed reward; a committee is bound in one transaction
        from the members' signed join intents; a quorum-signed result is reported; after the
        challenge window it is finalized. Within the window the requester or any staked node
        may dispute by posting a bond: a larger committee, disjoint from the first,
        re-executes the task and its result settles the dispute (slashing the original
        signers if it differs). Deadline misses are cancelled with a full refund and the
        seats that never delivered are slashed.
@dev Gas design: a task is stored as ONE word, `(keccak256(abi_encode(Task)) & ~255) | status`.
     Every later call passes the Task record in calldata and the contract checks it against
     that word, so each step costs one non-zero -> non-zero SSTORE for the task plus one per
     committee member (the packed account word in `registry`). Off-chain readers rebuild the
     record from this contract's events (see contracts/client.py).
"""

import registry

uses: registry

MAX_COMMITTEE: constant(uint256) = 16
MIN_COMMITTEE: constant(uint256) = 3
RERUN_EXTRA: constant(uint256) = 2  # a re-execution committee has m + 2 seats
MAX_SEATS: constant(uint256) = MAX_COMMITTEE + RERUN_EXTRA

# task status (numbers are part of the public interface)
ST_NONE: constant(uint256) = 0  # unknown task id
OPEN: constant(uint256) = 1
COMPUTING: constant(uint256) = 2
REPORTED: constant(uint256) = 3
FINALIZED: constant(uint256) = 4
REFUNDED: constant(uint256) = 5
DISPUTED: constant(uint256) = 6
RECOMPUTING: constant(uint256) = 7
OVERTURNED: constant(uint256) = 8

# dispute outcomes (DisputeResolved.outcome)
UPHELD: constant(uint256) = 1
REVERSED: constant(uint256) = 2
RERUN_FAILED: constant(uint256) = 3

MAX_REWARD: constant(uint256) = (1 << 96) - 1
MAX_TIME: constant(uint256) = (1 << 64) - 1
STATUS_MASK: constant(uint256) = 255

# Task.meta layout (offset, width)
CAP_OFF: constant(uint256) = 0  # 8
SIZE_OFF: constant(uint256) = 8  # 8
SEAT_DL_OFF: constant(uint256) = 16  # 64
REPORT_DL_OFF: constant(uint256) = 80  # 64
REPORTED_AT_OFF: constant(uint256) = 144  # 64
SIGNERS_OFF: constant(uint256) = 208  # 16
DECLINED_OFF: constant(uint256) = 224  # 16

# Task.ext layout
ADDR_MASK: constant(uint256) = (1 << 160) - 1  # callback address: bits 0..159
CALLBACK_GAS_OFF: constant(uint256) = 160  # 32
SEED_BLOCK_OFF: constant(uint256) = 192  # 64

# consumer callbacks (docs/protocol.md, "Consuming results")
MAX_CALLBACK_GAS: constant(uint256) = 1_000_000
# gas a finalizer must hold beyond cap * 64 / 63 when the callback is made: the CALL itself
# (cold account 2600) and what runs after it (event, return)
CALLBACK_MARGIN: constant(uint256) = 15_000

# Dispute.meta layout
D_SEAT_DL_OFF: constant(uint256) = 0  # 64
D_REPORT_DL_OFF: constant(uint256) = 64  # 64
D_SIGNERS_OFF: constant(uint256) = 128  # 32
D_DECLINED_OFF: constant(uint256) = 160  # 32
D_SEED_OFF: constant(uint256) = 192  # 64: the re-execution committee's seed block

# sortition (scheduler/sortition.py implements the same arithmetic off-chain)
W0_EXTRA: constant(uint256) = 4  # window at the seed block: 2 m + 4 draws
ESCALATE_BLOCKS: constant(uint256) = 4  # the window doubles every 4 blocks ...
MAX_DOUBLINGS: constant(uint256) = 16  # ... at most 16 times
SEED_LIFETIME: constant(uint256) = 256  # blockhash() reaches back 256 blocks

JOIN_TAG: constant(bytes32) = keccak256("dnode.join.v1")
REPORT_TAG: constant(bytes32) = keccak256("dnode.report.v1")
# secp256k1 order / 2: larger s values are the malleable twin and are rejected
HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168
NOT_SEATED: constant(uint256) = max_value(uint256)
SIG_LEN: constant(uint256) = 65
SIGS_BYTES: constant(uint256) = SIG_LEN * MAX_SEATS


struct Task:
    requester: address
    reward: uint256
    spec: bytes32  # keccak256(abi_encode(program_id, params_digest))
    meta: uint256
    ext: uint256  # callback (bits 0..159) | callback gas (160..191) | seed block (192..255)
    committee: DynArray[address, MAX_SEATS]
    result_digest: bytes32


struct Dispute:
    disputer: address
    meta: uint256
    committee: DynArray[address, MAX_SEATS]
    result_digest: bytes32


event TaskPosted:
    task_id: indexed(uint256)
    requester: indexed(address)
    program_id: bytes32
    params_digest: bytes32
    capability: uint256
    committee_size: uint256
    reward: uint256
    seat_deadline: uint256
    report_deadline: uint256
    seed_block: uint256

event CommitteeFormed:
    task_id: indexed(uint256)
    round: uint256
    members: DynArray[address, MAX_SEATS]

event SeatDeclined:
    task_id: indexed(uint256)
    node: indexed(address)
    round: uint256
    seat: uint256
    reason: String[128]

event ResultReported:
    task_id: indexed(uint256)
    round: uint256
    result: Bytes[1024]
    signers_bitmap: uint256
    reported_at: uint256

event CallbackRegistered:
    task_id: indexed(uint256)
    callback: indexed(address)
    callback_gas: uint256

event CallbackDelivered:
    task_id: indexed(uint256)
    callback: indexed(address)
    success: bool

event TaskFinalized:
    task_id: indexed(uint256)
    share: uint256
    extra_share: uint256

event TaskRefunded:
    task_id: indexed(uint256)
    requester: indexed(address)
    amount: uint256
    slashed_seats: uint256
    reason: String[32]

event TaskDisputed:
    task_id: indexed(uint256)
    disputer: indexed(address)
    bond: uint256
    seat_deadline: uint256
    report_deadline: uint256

event DisputeResolved:
    task_id: indexed(uint256)
    outcome: uint256
    slashed_seats: uint256
    to_disputer: uint256
    to_requester: uint256

event Slashed:
    node: indexed(address)
    task_id: indexed(uint256)
    amount: uint256


dispute_bond: public(immutable(uint256))
dispute_period: public(immutable(uint256))
challenge_period: public(immutable(uint256))

# (keccak256(abi_encode(Task)) & ~255) | status; 0 = unknown task
tasks: public(HashMap[uint256, uint256])
# keccak256(abi_encode(Dispute)) of a disputed task
disputes: public(HashMap[uint256, bytes32])
task_count: public(uint256)
# result bytes of the tasks that named a callback (opt-in; other tasks' results are only emitted)
results: HashMap[uint256, Bytes[1024]]


@deploy
def __init__(_challenge_period: uint256, _dispute_bond: uint256, _dispute_period: uint256):
    assert _dispute_bond > 0, "market: zero dispute bond"
    assert _dispute_period >= 4, "market: dispute period too short"
    challenge_period = _challenge_period
    dispute_bond = _dispute_bond
    dispute_period = _dispute_period


# ---------------------------------------------------------------- helpers


@internal
@pure
def _get(word: uint256, off: uint256, width: uint256) -> uint256:
    return (word >> off) & ((1 << width) - 1)


@internal
@pure
def _put(word: uint256, off: uint256, width: uint256, val: uint256) -> uint256:
    mask: uint256 = ((1 << width) - 1) << off
    return (word & ~mask) | (val << off)


@internal
@pure
def _popcount(x: uint256) -> uint256:
    n: uint256 = 0
    v: uint256 = x
    for i: uint256 in range(MAX_SEATS):
        if v == 0:
            break
        v &= v - 1
        n += 1
    return n


@internal
@pure
def _task_hash(t: Task) -> uint256:
    return convert(keccak256(abi_encode(t)), uint256) & ~STATUS_MASK


@internal
@pure
def _dispute_hash(d: Dispute) -> bytes32:
    return keccak256(abi_encode(d))


@internal
@view
def _load(task_id: uint256, t: Task) -> uint256:
    """Check the calldata record against the stored digest; return the status."""
    word: uint256 = self.tasks[task_id]
    assert word != 0, "market: unknown task"
    assert word & ~STATUS_MASK == self._task_hash(t), "market: bad task record"
    return word & STATUS_MASK


@internal
@view
def _load_dispute(task_id: uint256, d: Dispute):
    assert self.disputes[task_id] == self._dispute_hash(d), "market: bad dispute record"


@internal
def _store(task_id: uint256, t: Task, status: uint256):
    self.tasks[task_id] = self._task_hash(t) | status


@internal
def _set_status(task_id: uint256, status: uint256):
    self.tasks[task_id] = (self.tasks[task_id] & ~STATUS_MASK) | status


@internal
@view
def _eip191(digest: bytes32) -> bytes32:
    return keccak256(concat(b"\x19Ethereum Signed Message:\n32", digest))


@internal
@pure
def _recover(h: bytes32, sigs: Bytes[SIGS_BYTES], i: uint256) -> address:
    """Recover the signer of the i-th 65-byte r || s || v signature in `sigs`."""
    off: uint256 = i * SIG_LEN
    r: uint256 = convert(extract32(sigs, off), uint256)
    s: uint256 = convert(extract32(sigs, off + 32), uint256)
    v: uint256 = convert(slice(sigs, off + 64, 1), uint256)
    assert v == 27 or v == 28, "market: bad signature v"
    assert s != 0 and s <= HALF_N, "market: high-s signature"
    signer: address = ecrecover(h, v, r, s)
    assert signer != empty(address), "market: invalid signature"
    return signer


@internal
@view
def _seed(seed_block: uint256) -> bytes32:
    """The sortition seed: the hash of a block that was not mined when the task was posted."""
    assert block.number > seed_block, "sortition: seed block not mined yet"
    assert block.number - seed_block <= SEED_LIFETIME, "sortition: seed expired"
    return blockhash(seed_block)


@internal
@view
def _window(size: uint256, seed_block: uint256) -> uint256:
    """Draws claimable now: 2 m + 4, doubling every ESCALATE_BLOCKS past the seed block."""
    steps: uint256 = min((block.number - seed_block) // ESCALATE_BLOCKS, MAX_DOUBLINGS)
    return (2 * size + W0_EXTRA) << steps


@internal
def _bind_committee(
    task_id: uint256,
    round: uint256,
    size: uint256,
    capability: uint256,
    members: DynArray[address, MAX_SEATS],
    sigs: Bytes[SIGS_BYTES],
    excluded: DynArray[address, MAX_SEATS],
    draws: DynArray[uint256, MAX_SEATS],
    seed_block: uint256,
    offer: uint256,
):
    """
    Seat `members` in order: each one consented (its join signature, or it sent the tx),
    passes the per-seat eligibility check, was drawn by the stake-weighted sortition (its
    claimed draw j is inside the window and lands on one of its valid stake slots: O(1)
    per seat, whatever the registry size) and gets one seat's collateral locked.
    """
    assert len(members) == size, "market: wrong committee size"
    assert len(sigs) == size * SIG_LEN, "market: one signature per member"
    assert len(draws) == size, "market: one draw per member"
    seed: bytes32 = self._seed(seed_block)
    win: uint256 = self._window(size, seed_block)
    mask: uint256 = registry._span() - 1
    h: bytes32 = self._eip191(
        keccak256(abi_encode(JOIN_TAG, chain.id, self, task_id, round))
    )
    for i: uint256 in range(size, bound=MAX_SEATS):
        member: address = members[i]
        for j: uint256 in range(i, bound=MAX_SEATS):
            assert members[j] != member, "market: duplicate member"
        for x: address in excluded:
            assert x != member, "market: member not eligible"
        if member != msg.sender:
            assert self._recover(h, sigs, i) == member, "market: bad join signature"
        registry._lock_seat(member, capability, offer)
        assert draws[i] < win, "sortition: draw outside window"
        pos: uint256 = convert(keccak256(abi_encode(seed, task_id, round, draws[i])), uint256)
        assert registry._slot_holder(pos & mask) == member, "sortition: member not drawn"


@internal
def _pay_signers(
    committee: DynArray[address, MAX_SEATS],
    signers: uint256,
    declined: uint256,
    amount: uint256,
    extra: uint256,
) -> (uint256, uint256):
    """Release every non-declined seat; credit signers amount/n (+ extra/n), dust to the first."""
    n: uint256 = self._popcount(signers)
    share: uint256 = amount // n
    extra_share: uint256 = extra // n
    dust: uint256 = amount + extra - (share + extra_share) * n
    for i: uint256 in range(len(committee), bound=MAX_SEATS):
        bit: uint256 = 1 << i
        if signers & bit != 0:
            registry._release_seat(committee[i], share + extra_share + dust)
            dust = 0
        elif declined & bit == 0:
            registry._release_seat(committee[i], 0)
    return share, extra_share


@internal
def _release_rerun(d: Dispute, declined: uint256):
    for i: uint256 in range(len(d.committee), bound=MAX_SEATS):
        if declined & (1 << i) == 0:
            registry._release_seat(d.committee[i], 0)


@internal
def _slash_undelivered(
    task_id: uint256, members: DynArray[address, MAX_SEATS], declined: uint256
) -> uint256:
    """Slash every non-declined seat; returns the number slashed."""
    n: uint256 = 0
    for i: uint256 in range(len(members), bound=MAX_SEATS):
        if declined & (1 << i) == 0:
            amount: uint256 = registry._slash_seat(members[i])
            log Slashed(node=members[i], task_id=task_id, amount=amount)
            n += 1
    return n


@internal
def _check_signatures(
    task_id: uint256,
    result: Bytes[1024],
    sigs: Bytes[SIGS_BYTES],
    committee: DynArray[address, MAX_SEATS],
    declined: uint256,
) -> uint256:
    """Recover each signature once; every signer must be a distinct, non-declined seat."""
    quorum: uint256 = len(committee) // 2 + 1
    assert len(sigs) % SIG_LEN == 0, "oracle: malformed signature"
    n: uint256 = len(sigs) // SIG_LEN
    assert n >= quorum, "oracle: no quorum"
    h: bytes32 = self._eip191(
        keccak256(abi_encode(REPORT_TAG, chain.id, self, task_id, keccak256(result)))
    )
    bitmap: uint256 = 0
    for k: uint256 in range(n, bound=MAX_SEATS):
        signer: address = self._recover(h, sigs, k)
        idx: uint256 = NOT_SEATED
        for i: uint256 in range(len(committee), bound=MAX_SEATS):
            if committee[i] == signer:
                idx = i
                break
        assert idx != NOT_SEATED, "oracle: signer not in committee"
        bit: uint256 = 1 << idx
        assert bitmap & bit == 0, "oracle: duplicate signer"
        assert declined & bit == 0, "oracle: signer declined"
        bitmap |= bit
    return bitmap


@internal
def _deliver(task_id: uint256, ext: uint256):
    """
    Call the task's consumer back with its final result: last step of every path that ends
    FINALIZED, after all state changes and credits. The consumer gets exactly its gas cap (the
    caller must hold cap * 64/63 + margin, EIP-150) and its failure is only logged, so a
    reverting or gas-burning consumer cannot block finalization or anyone's payment.
    """
    gas: uint256 = self._get(ext, CALLBACK_GAS_OFF, 32)
    if gas == 0:
        return  # no callback (or publish-only: the result is stored for result_of)
    callback: address = convert(convert(ext & ADDR_MASK, uint160), address)
    payload: Bytes[1124] = abi_encode(
        task_id, self.results[task_id], method_id=method_id("on_task_result(uint256,bytes)")
    )
    assert msg.gas >= gas * 64 // 63 + CALLBACK_MARGIN, "oracle: gas below callback cap"
    ok: bool = raw_call(callback, payload, gas=gas, max_outsize=0, revert_on_failure=False)
    log CallbackDelivered(task_id=task_id, callback=callback, success=ok)


# ---------------------------------------------------------------- task lifecycle


@external
@payable
@nonreentrant
def post_task(
    program_id: bytes32,
    params_digest: bytes32,
    capability: uint256,
    committee_size: uint256,
    seat_deadline: uint256,
    report_deadline: uint256,
    callback: address = empty(address),
    callback_gas: uint256 = 0,
) -> uint256:
    """
    @notice Post a compute task, escrowing msg.value as the committee's reward. A consumer
            contract names itself as `callback`: the result bytes are then stored (readable
            with result_of) and, if callback_gas > 0, the finalizing transaction calls
            callback.on_task_result(task_id, result) with exactly callback_gas gas.
    @param program_id identifier of the program the committee runs
    @param params_digest digest of the (off-chain) task parameters
    @param capability required node capability bit (MPC=1 or HE=2)
    @param committee_size number of seats m, 3..16; quorum is m // 2 + 1
    @param seat_deadline absolute timestamp until which the committee may be formed
    @param report_deadline absolute timestamp until which a result may be reported
    @param callback consumer contract (IDnodeConsumer), or empty for a plain task
    @param callback_gas gas cap of the callback, <= MAX_CALLBACK_GAS (0: store the result
           for result_of but make no call)
    @return the new task id (ids start at 1)
    """
    assert msg.value > 0, "market: zero reward"
    assert msg.value <= MAX_REWARD, "market: reward too large"
    assert capability == registry.MPC or capability == registry.HE, "market: bad capability"
    assert committee_size >= MIN_COMMITTEE, "market: committee too small"
    assert committee_size <= MAX_COMMITTEE, "market: committee too large"
    assert seat_deadline > block.timestamp, "market: seat deadline in the past"
    assert report_deadline > seat_deadline, "market: report deadline before seat deadline"
    assert report_deadline <= MAX_TIME, "market: deadline too far"
    assert callback_gas <= MAX_CALLBACK_GAS, "market: callback gas too high"
    assert callback != empty(address) or callback_gas == 0, "market: callback gas without callback"

    task_id: uint256 = self.task_count + 1
    self.task_count = task_id
    t: Task = Task(
        requester=msg.sender,
        reward=msg.value,
        spec=keccak256(abi_encode(program_id, params_digest)),
        meta=(
            capability
            | (committee_size << SIZE_OFF)
            | (seat_deadline << SEAT_DL_OFF)
            | (report_deadline << REPORT_DL_OFF)
        ),
        ext=(
            convert(callback, uint256)
            | (callback_gas << CALLBACK_GAS_OFF)
            | ((block.number + 1) << SEED_BLOCK_OFF)
        ),
        committee=[],
        result_digest=empty(bytes32),
    )
    self._store(task_id, t, OPEN)
    log TaskPosted(
        task_id=task_id,
        requester=msg.sender,
        program_id=program_id,
        params_digest=params_digest,
        capability=capability,
        committee_size=committee_size,
        reward=msg.value,
        seat_deadline=seat_deadline,
        report_deadline=report_deadline,
        seed_block=block.number + 1,
    )
    if callback != empty(address):
        log CallbackRegistered(task_id=task_id, callback=callback, callback_gas=callback_gas)
    return task_id


@external
@nonreentrant
def form_committee(
    task_id: uint256,
    t: Task,
    members: DynArray[address, MAX_SEATS],
    sigs: Bytes[SIGS_BYTES],
    draws: DynArray[uint256, MAX_SEATS],
):
    """
    @notice Bind the whole committee of an open task in one transaction.
    @dev Seat i is members[i]. Each member either sends this transaction or signed the join
         intent keccak256(abi_encode(keccak256("dnode.join.v1"), chain.id, this, task_id, 0))
         (EIP-191); its signature slot may be empty when it is msg.sender. Each member must be
         an active node with the capability, one seat's collateral free (which is locked), a
         declared price <= reward // m and a free seat within its declared capacity, and must
         have been drawn: draws[i] = j < window with
         slot_holder(keccak256(abi_encode(blockhash(seed_block), task_id, 0, j)) mod span)
         == members[i] (see docs/protocol.md, "Committee sortition").
    @param task_id task to staff
    @param t the task record (as rebuilt from events)
    @param members the m seat holders, in seat order
    @param sigs join signatures, aligned with members
    @param draws the sortition draw index each member claims, aligned with members
    """
    assert self._load(task_id, t) == OPEN, "market: task not open"
    assert block.timestamp <= self._get(t.meta, SEAT_DL_OFF, 64), "market: seat deadline passed"
    excluded: DynArray[address, MAX_SEATS] = [t.requester]
    size: uint256 = self._get(t.meta, SIZE_OFF, 8)
    self._bind_committee(
        task_id,
        0,
        size,
        self._get(t.meta, CAP_OFF, 8),
        members,
        sigs,
        excluded,
        draws,
        t.ext >> SEED_BLOCK_OFF,
        t.reward // size,
    )
    nt: Task = t
    nt.committee = members
    self._store(task_id, nt, COMPUTING)
    log CommitteeFormed(task_id=task_id, round=0, members=members)


@external
@nonreentrant
def report(task_id: uint256, t: Task, result: Bytes[1024], sigs: Bytes[SIGS_BYTES]):
    """
    @notice Submit the committee's result with a quorum of seat-holder signatures.
    @dev Signed message: keccak256(abi_encode(keccak256("dnode.report.v1"), chain.id, this,
         task_id, keccak256(result))), EIP-191 prefixed, 65-byte r||s||v, low s. Any invalid,
         foreign, duplicate or declined signer rejects the whole report; only one report is
         ever accepted.
    @param task_id task the result belongs to
    @param t the task record
    @param result public result bytes (emitted; only its digest is kept, and the bytes
           themselves when the task named a callback)
    @param sigs signatures over the report hash, one per signer
    """
    status: uint256 = self._load(task_id, t)
    assert status == COMPUTING, "oracle: task not computing"
    assert block.timestamp <= self._get(t.meta, REPORT_DL_OFF, 64), (
        "oracle: report deadline passed"
    )
    bitmap: uint256 = self._check_signatures(
        task_id, result, sigs, t.committee, self._get(t.meta, DECLINED_OFF, 16)
    )
    nt: Task = t
    meta: uint256 = self._put(t.meta, SIGNERS_OFF, 16, bitmap)
    nt.meta = self._put(meta, REPORTED_AT_OFF, 64, block.timestamp)
    nt.result_digest = keccak256(result)
    self._store(task_id, nt, REPORTED)
    if t.ext & ADDR_MASK != 0:
        self.results[task_id] = result
    log ResultReported(
        task_id=task_id, round=0, result=result, signers_bitmap=bitmap, reported_at=block.timestamp
    )


@external
@nonreentrant
def finalize(task_id: uint256, t: Task):
    """
    @notice Pay an undisputed report after the challenge window: the reward is split equally
            among the signing seats (rounding dust to the lowest signing seat) and every
            non-declined seat's collateral is unlocked. Then the task's consumer, if any, is
            called back (see _deliver): the transaction must carry its gas cap.
    @param task_id task to finalize
    @param t the task record
    """
    status: uint256 = self._load(task_id, t)
    assert status != FINALIZED, "oracle: already finalized"
    assert status == REPORTED, "oracle: not reported"
    reported_at: uint256 = self._get(t.meta, REPORTED_AT_OFF, 64)
    assert block.timestamp >= reported_at + challenge_period, "oracle: challenge period active"
    self._set_status(task_id, FINALIZED)
    share: uint256 = 0
    extra: uint256 = 0
    share, extra = self._pay_signers(
        t.committee,
        self._get(t.meta, SIGNERS_OFF, 16),
        self._get(t.meta, DECLINED_OFF, 16),
        t.reward,
        0,
    )
    log TaskFinalized(task_id=task_id, share=share, extra_share=extra)
    self._deliver(task_id, t.ext)


@external
@nonreentrant
def cancel(task_id: uint256, t: Task):
    """
    @notice Refund a task whose committee missed a deadline (anyone may call; the escrow
            always goes to the requester's credits).
    @dev OPEN after seat_deadline ("sortition: seats not filled"), or more than 256 blocks
         after the seed block, whose hash the sortition can no longer read ("sortition: seed
         expired"): full refund. COMPUTING after report_deadline: full refund
         and every seat that neither reported nor declined is slashed one seat_collateral,
         credited to the requester. COMPUTING when so many seats declined that no quorum is
         possible: full refund at once, nobody slashed.
    @param task_id task to cancel
    @param t the task record
    """
    status: uint256 = self._load(task_id, t)
    slashed: uint256 = 0
    reason: String[32] = ""
    if status == OPEN:
        if block.number > (t.ext >> SEED_BLOCK_OFF) + SEED_LIFETIME:
            reason = "sortition: seed expired"
        else:
            assert block.timestamp > self._get(t.meta, SEAT_DL_OFF, 64), (
                "market: seating still open"
            )
            reason = "sortition: seats not filled"
    elif status == COMPUTING:
        m: uint256 = len(t.committee)
        declined: uint256 = self._get(t.meta, DECLINED_OFF, 16)
        if self._popcount(declined) > m - (m // 2 + 1):
            for i: uint256 in range(m, bound=MAX_SEATS):
                if declined & (1 << i) == 0:
                    registry._release_seat(t.committee[i], 0)
            reason = "market: too many declines"
        else:
            assert block.timestamp > self._get(t.meta, REPORT_DL_OFF, 64), (
                "market: report still due"
            )
            slashed = self._slash_undelivered(task_id, t.committee, declined)
            reason = "market: report deadline missed"
    else:
        raise "market: not cancellable"
    self._set_status(task_id, REFUNDED)
    amount: uint256 = t.reward + slashed * registry.seat_collateral
    registry._credit(t.requester, amount)
    log TaskRefunded(
        task_id=task_id, requester=t.requester, amount=amount, slashed_seats=slashed, reason=reason
    )


@external
@nonreentrant
def decline(task_id: uint256, t: Task, d: Dispute, reason: String[128]):
    """
    @notice A seat holder that cannot run the task gives up its seat before the report
            deadline, stating why; its collateral is unlocked and it is never slashed for it.
    @dev Works for the original committee (status COMPUTING; `d` is ignored) and for the
         re-execution committee (status RECOMPUTING; `d` must be the dispute record).
    @param task_id task
    @param t the task record
    @param d the dispute record (any value when not disputed)
    @param reason failure-indicating message (emitted)
    """
    status: uint256 = self._load(task_id, t)
    idx: uint256 = NOT_SEATED
    round: uint256 = 0
    if status == COMPUTING:
        assert block.timestamp <= self._get(t.meta, REPORT_DL_OFF, 64), (
            "market: report deadline passed"
        )
        for i: uint256 in range(len(t.committee), bound=MAX_SEATS):
            if t.committee[i] == msg.sender:
                idx = i
                break
        assert idx != NOT_SEATED, "market: not a seat holder"
        declined: uint256 = self._get(t.meta, DECLINED_OFF, 16)
        assert declined & (1 << idx) == 0, "market: already declined"
        nt: Task = t
        nt.meta = self._put(t.meta, DECLINED_OFF, 16, declined | (1 << idx))
        self._store(task_id, nt, COMPUTING)
    elif status == RECOMPUTING:
        self._load_dispute(task_id, d)
        assert block.timestamp <= self._get(d.meta, D_REPORT_DL_OFF, 64), (
            "market: report deadline passed"
        )
        for i: uint256 in range(len(d.committee), bound=MAX_SEATS):
            if d.committee[i] == msg.sender:
                idx = i
                break
        assert idx != NOT_SEATED, "market: not a seat holder"
        declined: uint256 = self._get(d.meta, D_DECLINED_OFF, 32)
        assert declined & (1 << idx) == 0, "market: already declined"
        nd: Dispute = d
        nd.meta = self._put(d.meta, D_DECLINED_OFF, 32, declined | (1 << idx))
        self.disputes[task_id] = self._dispute_hash(nd)
        round = 1
    else:
        raise "market: not computing"
    registry._release_seat(msg.sender, 0)
    log SeatDeclined(task_id=task_id, node=msg.sender, round=round, seat=idx, reason=reason)


# ---------------------------------------------------------------- views


@external
@view
def task_status(task_id: uint256) -> uint256:
    """
    @notice Status of a task (0 unknown, 1 open, 2 computing, 3 reported, 4 finalized,
            5 refunded, 6 disputed, 7 recomputing, 8 overturned).
    """
    return self.tasks[task_id] & STATUS_MASK


@external
@view
def result_of(task_id: uint256) -> (uint256, bytes32, Bytes[1024]):
    """
    @notice (status, digest, result bytes) of a task that named a callback: the committee's
            result once reported, the re-execution committee's once a dispute overturned it.
            Other tasks' results are only emitted (ResultReported): for them, and before a
            report, digest and bytes are empty.
    @dev Public results are abi.encode(int256[] values, uint8 decimals, uint256 count); HE
         results abi.encode(bytes32 blob_digest, string locator). See docs/protocol.md.
    """
    r: Bytes[1024] = self.results[task_id]
    if len(r) == 0:
        return self.tasks[task_id] & STATUS_MASK, empty(bytes32), b""
    return self.tasks[task_id] & STATUS_MASK, keccak256(r), r

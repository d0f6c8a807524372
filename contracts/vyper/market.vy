# pragma version 0.4.3
"""
@title dnode compute market and result oracle
@notice Requesters post tasks with escrowed reward; a committee is bound in one transaction
        from the members' signed join intents; a quorum-signed result is reported; after the
        challenge window it is finalized. Within the window the requester or any staked node
        may dispute by posting a bond: a larger committee, disjoint from the first,
        re-executes the task and its result settles the dispute (replacing the result if it
        differs; see court.vy for why nobody is slashed for that). Deadline misses are
        cancelled with a full refund and the seats that never delivered are slashed.
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
MAX_TIME: constant(uint256) = (1 << 40) - (1 << 34)  # packed timestamps are 40 bits wide
MAX_PERIOD: constant(uint256) = 1 << 32  # any period or window, in seconds
STATUS_MASK: constant(uint256) = 255

# Task.meta layout (offset, width). REPORT_DL holds the compute window while the task is
# OPEN and the absolute report deadline (formed_at + window) from formation on; REPORTED_AT
# holds the end of the seat-claim period between a formation that skipped and the report.
CAP_OFF: constant(uint256) = 0  # 8
SIZE_OFF: constant(uint256) = 8  # 8
SEAT_DL_OFF: constant(uint256) = 16  # 40
REPORT_DL_OFF: constant(uint256) = 56  # 40
REPORTED_AT_OFF: constant(uint256) = 96  # 40
SIGNERS_OFF: constant(uint256) = 136  # 16
DECLINED_OFF: constant(uint256) = 152  # 16
POSTED_AT_OFF: constant(uint256) = 168  # 40
SNAPSHOT_OFF: constant(uint256) = 208  # 40: slot_count when the task was posted
SKIPS_OFF: constant(uint256) = 248  # 8: skipped candidates not yet displaced by a claim

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
D_SEAT_DL_OFF: constant(uint256) = 0  # 40
D_REPORT_DL_OFF: constant(uint256) = 40  # 40
D_SIGNERS_OFF: constant(uint256) = 80  # 24
D_DECLINED_OFF: constant(uint256) = 104  # 24
D_SEED_OFF: constant(uint256) = 128  # 40: the re-execution committee's seed block
D_SNAPSHOT_OFF: constant(uint256) = 168  # 40: slot_count when the dispute was raised
D_SKIPS_OFF: constant(uint256) = 208  # 8
D_CLAIMS_OFF: constant(uint256) = 216  # 40: end of the seat-claim period

# Task.draws / Dispute.draws: the sortition draw of seat i at bits DRAW_BITS * i
DRAW_BITS: constant(uint256) = 14
MAX_DRAW: constant(uint256) = (1 << DRAW_BITS) - 1

# ranked sortition (scheduler/sortition.py implements the same arithmetic off-chain)
SKIP_DELAY: constant(uint256) = 10  # seconds after posting during which nobody may be skipped
SKIP_STEP: constant(uint256) = 10  # ... then one more skip allowed every 10 s, up to m
SEED_LIFETIME: constant(uint256) = 256  # blockhash() reaches back 256 blocks
SKIP_BLOCKS: constant(uint256) = 128  # a formation that skips leaves >= 128 blocks for claims
# shortest re-execution seat window (dispute_period // 4) a deployment may have
RERUN_SEAT_WINDOW: constant(uint256) = SKIP_DELAY + SKIP_STEP * MAX_SEATS

JOIN_TAG: constant(bytes32) = keccak256("dnode.join.v1")
REPORT_TAG: constant(bytes32) = keccak256("dnode.report.v1")
# secp256k1 order / 2: larger s values are the malleable twin and are rejected
HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168
NOT_SEATED: constant(uint256) = max_value(uint256)
SIG_LEN: constant(uint256) = 65
SIGS_BYTES: constant(uint256) = SIG_LEN * MAX_SEATS
# slashed collateral that goes to nobody is credited here: no transaction comes from it
BURN: constant(address) = empty(address)


struct Task:
    requester: address
    reward: uint256
    spec: bytes32  # keccak256(abi_encode(program_id, params_digest))
    meta: uint256
    ext: uint256  # callback (bits 0..159) | callback gas (160..191) | seed block (192..255)
    committee: DynArray[address, MAX_SEATS]
    draws: uint256  # draw index of seat i at bits 14 i
    result_digest: bytes32


struct Dispute:
    disputer: address
    meta: uint256
    committee: DynArray[address, MAX_SEATS]
    draws: uint256
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
    compute_window: uint256
    seed_block: uint256
    slot_snapshot: uint256
    posted_at: uint256

event CommitteeFormed:
    task_id: indexed(uint256)
    round: uint256
    members: DynArray[address, MAX_SEATS]
    draws: uint256  # packed: draw of seat i at bits 14 i
    skips: uint256
    report_deadline: uint256
    claims_until: uint256  # 0 when nobody was skipped (no claim period)

event SeatClaimed:
    task_id: indexed(uint256)
    node: indexed(address)
    round: uint256
    seat: uint256
    draw: uint256
    displaced: address

event CoSigned:
    task_id: indexed(uint256)
    node: indexed(address)
    seat: uint256
    signers_bitmap: uint256

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
    seed_block: uint256
    slot_snapshot: uint256

event DisputeResolved:
    task_id: indexed(uint256)
    outcome: uint256
    slashed_seats: uint256  # re-execution seats slashed for silence (never original signers)
    to_disputer: uint256
    to_signers: uint256  # credited to the original signers (reward + delay compensation)
    to_rerun: uint256  # credited to the re-execution signers

event Slashed:
    node: indexed(address)
    task_id: indexed(uint256)
    amount: uint256


dispute_bond: public(immutable(uint256))
dispute_period: public(immutable(uint256))
challenge_period: public(immutable(uint256))
min_reward: public(immutable(uint256))
min_compute_window: public(immutable(uint256))
claim_period: public(immutable(uint256))

# (keccak256(abi_encode(Task)) & ~255) | status; 0 = unknown task
tasks: public(HashMap[uint256, uint256])
# keccak256(abi_encode(Dispute)) of a disputed task
disputes: public(HashMap[uint256, bytes32])
task_count: public(uint256)
# result bytes of the tasks that named a callback (opt-in; other tasks' results are only emitted)
results: HashMap[uint256, Bytes[1024]]


@deploy
def __init__(
    _challenge_period: uint256,
    _dispute_bond: uint256,
    _dispute_period: uint256,
    _min_reward: uint256,
    _min_compute_window: uint256,
    _claim_period: uint256,
):
    assert _dispute_bond > 0 and _dispute_bond <= MAX_REWARD, "market: bad dispute bond"
    # the re-execution committee (up to MAX_SEATS seats) must be able to form in its seat
    # window even when every top-ranked candidate stays silent: the skip budget reaches
    # MAX_SEATS after SKIP_DELAY + (MAX_SEATS - 1) * SKIP_STEP, plus one step to land the tx
    assert _dispute_period // 4 >= RERUN_SEAT_WINDOW, "market: dispute period too short"
    assert _min_reward > 0 and _min_reward <= MAX_REWARD, "market: bad minimum reward"
    assert max(max(_challenge_period, _dispute_period), _min_compute_window) <= MAX_PERIOD, (
        "market: period too long"
    )
    assert _min_compute_window > _claim_period, "market: compute window below claim period"
    assert 2 * _claim_period <= _dispute_period, "market: claim period too long"
    challenge_period = _challenge_period
    dispute_bond = _dispute_bond
    dispute_period = _dispute_period
    min_reward = _min_reward
    min_compute_window = _min_compute_window
    claim_period = _claim_period


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
def _skip_budget(size: uint256, started: uint256) -> uint256:
    """Eligible candidates ranked above a member that a formation may leave out (offline,
    or not consenting): none for SKIP_DELAY seconds after posting, then one more every
    SKIP_STEP seconds, at most the committee size."""
    if block.timestamp < started + SKIP_DELAY:
        return 0
    return min(1 + (block.timestamp - started - SKIP_DELAY) // SKIP_STEP, size)


@internal
@view
def _drawn(seed: bytes32, task_id: uint256, round: uint256, j: uint256, snapshot: uint256) -> address:
    """Owner of the slot draw j lands on (zero: a stale slot). Draws are taken modulo the
    slot count snapshotted at posting (or dispute): slots appended later are never drawn."""
    pos: uint256 = convert(keccak256(abi_encode(seed, task_id, round, j)), uint256) % snapshot
    return registry._slot_holder(pos)


@internal
@pure
def _has(xs: DynArray[address, MAX_SEATS], a: address) -> bool:
    for x: address in xs:
        if x == a:
            return True
    return False


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
    snapshot: uint256,
    offer: uint256,
    started: uint256,
) -> (uint256, uint256):
    """
    Seat `members` (each consented: its join signature, or it sent the tx; passes the
    per-seat eligibility check; gets one seat's collateral locked) and check the ranking:
    draws[i] is members[i]'s FIRST draw, and every draw ranked above the worst member's that
    is not a member's lands on a stale slot, an excluded or on-chain ineligible owner, an
    owner already counted, or a skipped owner; at most _skip_budget owners are skipped.
    Returns (packed draws, skips).
    """
    assert len(members) == size, "market: wrong committee size"
    assert len(sigs) == size * SIG_LEN, "market: one signature per member"
    assert len(draws) == size, "market: one draw per member"
    assert snapshot > 0, "sortition: no slots at posting"
    seed: bytes32 = self._seed(seed_block)
    h: bytes32 = self._eip191(
        keccak256(abi_encode(JOIN_TAG, chain.id, self, task_id, round))
    )
    packed: uint256 = 0
    last: uint256 = 0
    for i: uint256 in range(size, bound=MAX_SEATS):
        member: address = members[i]
        for j: uint256 in range(i, bound=MAX_SEATS):
            assert members[j] != member, "market: duplicate member"
        assert not self._has(excluded, member), "market: member not eligible"
        if member != msg.sender:
            assert self._recover(h, sigs, i) == member, "market: bad join signature"
        registry._lock_seat(member, capability, offer)
        assert draws[i] <= MAX_DRAW, "sortition: draw too deep"
        assert self._drawn(seed, task_id, round, draws[i], snapshot) == member, (
            "sortition: member not drawn"
        )
        packed |= draws[i] << (DRAW_BITS * i)
        last = max(last, draws[i])
    budget: uint256 = self._skip_budget(size, started)
    skipped: DynArray[address, MAX_SEATS] = []
    for j: uint256 in range(last, bound=MAX_DRAW):
        owner: address = self._drawn(seed, task_id, round, j, snapshot)
        if owner == empty(address):
            continue
        seat: uint256 = NOT_SEATED
        for i: uint256 in range(size, bound=MAX_SEATS):
            if members[i] == owner:
                seat = i
                break
        if seat != NOT_SEATED:
            assert draws[seat] <= j, "sortition: member not at its first draw"
            continue
        if self._has(excluded, owner) or self._has(skipped, owner):
            continue
        if not registry._eligible(owner, capability, offer):
            continue
        assert len(skipped) < budget, "sortition: skips over budget"
        skipped.append(owner)
    if len(skipped) > 0:
        assert block.number <= seed_block + SKIP_BLOCKS, "sortition: too late to skip"
    return packed, len(skipped)


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
def _release_seats(committee: DynArray[address, MAX_SEATS], declined: uint256):
    """Unlock every non-declined seat, unpaid and unslashed."""
    for i: uint256 in range(len(committee), bound=MAX_SEATS):
        if declined & (1 << i) == 0:
            registry._release_seat(committee[i], 0)


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
    h: bytes32,
    sigs: Bytes[SIGS_BYTES],
    committee: DynArray[address, MAX_SEATS],
    declined: uint256,
) -> uint256:
    """Recover each signature once; every signer must be a distinct seat. A seat that
    declined is skipped (its signature does not count), so a signer front-running the report
    with decline() cannot void it; the seats left must still be a quorum."""
    quorum: uint256 = len(committee) // 2 + 1
    assert len(sigs) % SIG_LEN == 0, "oracle: malformed signature"
    n: uint256 = len(sigs) // SIG_LEN
    bitmap: uint256 = 0
    count: uint256 = 0
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
        if declined & bit == 0:
            bitmap |= bit
            count += 1
    assert count >= quorum, "oracle: no quorum"
    return bitmap


@internal
@view
def _report_hash(task_id: uint256, digest: bytes32) -> bytes32:
    return self._eip191(keccak256(abi_encode(REPORT_TAG, chain.id, self, task_id, digest)))


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


@internal
def _post_task(
    requester: address,
    reward: uint256,
    program_id: bytes32,
    params_digest: bytes32,
    capability: uint256,
    committee_size: uint256,
    seat_deadline: uint256,
    compute_window: uint256,
    callback: address,
    callback_gas: uint256,
) -> uint256:
    """Check and store a new task escrowing `reward` for `requester` (post_task, and the
    data extension's post_data_task, which escrows dataset prices beside it)."""
    assert reward >= min_reward, "market: reward below minimum"
    assert reward <= MAX_REWARD, "market: reward too large"
    assert capability == registry.MPC or capability == registry.HE, "market: bad capability"
    assert committee_size >= MIN_COMMITTEE, "market: committee too small"
    assert committee_size <= MAX_COMMITTEE, "market: committee too large"
    assert seat_deadline > block.timestamp, "market: seat deadline in the past"
    assert seat_deadline <= MAX_TIME, "market: deadline too far"
    assert compute_window >= min_compute_window, "market: compute window below minimum"
    assert compute_window <= MAX_PERIOD, "market: compute window too long"
    assert callback_gas <= MAX_CALLBACK_GAS, "market: callback gas too high"
    assert callback != empty(address) or callback_gas == 0, "market: callback gas without callback"

    task_id: uint256 = self.task_count + 1
    self.task_count = task_id
    snapshot: uint256 = min(registry.slot_count, (1 << 40) - 1)
    t: Task = Task(
        requester=requester,
        reward=reward,
        spec=keccak256(abi_encode(program_id, params_digest)),
        meta=(
            capability
            | (committee_size << SIZE_OFF)
            | (seat_deadline << SEAT_DL_OFF)
            | (compute_window << REPORT_DL_OFF)
            | (block.timestamp << POSTED_AT_OFF)
            | (snapshot << SNAPSHOT_OFF)
        ),
        ext=(
            convert(callback, uint256)
            | (callback_gas << CALLBACK_GAS_OFF)
            | ((block.number + 1) << SEED_BLOCK_OFF)
        ),
        committee=[],
        draws=0,
        result_digest=empty(bytes32),
    )
    self._store(task_id, t, OPEN)
    log TaskPosted(
        task_id=task_id,
        requester=requester,
        program_id=program_id,
        params_digest=params_digest,
        capability=capability,
        committee_size=committee_size,
        reward=reward,
        seat_deadline=seat_deadline,
        compute_window=compute_window,
        seed_block=block.number + 1,
        slot_snapshot=snapshot,
        posted_at=block.timestamp,
    )
    if callback != empty(address):
        log CallbackRegistered(task_id=task_id, callback=callback, callback_gas=callback_gas)
    return task_id


@external
@payable
@nonreentrant
def post_task(
    program_id: bytes32,
    params_digest: bytes32,
    capability: uint256,
    committee_size: uint256,
    seat_deadline: uint256,
    compute_window: uint256,
    callback: address = empty(address),
    callback_gas: uint256 = 0,
) -> uint256:
    """
    @notice Post a compute task, escrowing msg.value (>= min_reward) as the committee's
            reward. A consumer contract names itself as `callback`: the result bytes are then
            stored (readable with result_of) and, if callback_gas > 0, the finalizing
            transaction calls callback.on_task_result(task_id, result) with exactly
            callback_gas gas.
    @dev The registry's slot count is snapshotted here: the sortition draws modulo it, so
         stake added after posting buys no draw of this task.
    @param program_id identifier of the program the committee runs
    @param params_digest digest of the (off-chain) task parameters
    @param capability required node capability bit (MPC=1 or HE=2)
    @param committee_size number of seats m, 3..16; quorum is m // 2 + 1
    @param seat_deadline absolute timestamp until which the committee may be formed
    @param compute_window seconds the committee has from its formation to report
           (>= min_compute_window): report_deadline = formed_at + compute_window
    @param callback consumer contract (IDnodeConsumer), or empty for a plain task
    @param callback_gas gas cap of the callback, <= MAX_CALLBACK_GAS (0: store the result
           for result_of but make no call)
    @return the new task id (ids start at 1)
    """
    return self._post_task(
        msg.sender,
        msg.value,
        program_id,
        params_digest,
        capability,
        committee_size,
        seat_deadline,
        compute_window,
        callback,
        callback_gas,
    )


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
    @notice Bind the best-ranked committee of an open task in one transaction.
    @dev Seat i is members[i]. Each member either sends this transaction or signed the join
         intent keccak256(abi_encode(keccak256("dnode.join.v1"), chain.id, this, task_id, 0))
         (EIP-191); its signature slot may be empty when it is msg.sender. Each member must be
         an active node with the capability, one seat's collateral free (which is locked), a
         declared price <= reward // m and a free seat within its declared capacity.
         draws[i] must be members[i]'s first draw: the j with
         slot_holder(keccak256(abi_encode(blockhash(seed_block), task_id, 0, j)) % snapshot)
         == members[i]; every other owner drawn before the worst member must be stale,
         the requester, ineligible on-chain, or one of at most _skip_budget skipped owners
         (docs/protocol.md, "Committee sortition"). If any owner was skipped, skipped owners
         may displace the worst-ranked members with claim_seat for claim_period seconds and
         the report waits until then. The report deadline is now + the compute window.
    @param task_id task to staff
    @param t the task record (as rebuilt from events)
    @param members the m seat holders, in seat order
    @param sigs join signatures, aligned with members
    @param draws the first sortition draw of each member, aligned with members
    """
    assert self._load(task_id, t) == OPEN, "market: task not open"
    assert block.timestamp <= self._get(t.meta, SEAT_DL_OFF, 40), "market: seat deadline passed"
    excluded: DynArray[address, MAX_SEATS] = [t.requester]
    size: uint256 = self._get(t.meta, SIZE_OFF, 8)
    packed: uint256 = 0
    skips: uint256 = 0
    packed, skips = self._bind_committee(
        task_id,
        0,
        size,
        self._get(t.meta, CAP_OFF, 8),
        members,
        sigs,
        excluded,
        draws,
        t.ext >> SEED_BLOCK_OFF,
        self._get(t.meta, SNAPSHOT_OFF, 40),
        t.reward // size,
        self._get(t.meta, POSTED_AT_OFF, 40),
    )
    report_dl: uint256 = block.timestamp + self._get(t.meta, REPORT_DL_OFF, 40)
    claims_until: uint256 = 0
    nt: Task = t
    meta: uint256 = self._put(t.meta, REPORT_DL_OFF, 40, report_dl)
    if skips > 0:
        claims_until = block.timestamp + claim_period
        meta = self._put(self._put(meta, REPORTED_AT_OFF, 40, claims_until), SKIPS_OFF, 8, skips)
    nt.meta = meta
    nt.committee = members
    nt.draws = packed
    self._store(task_id, nt, COMPUTING)
    log CommitteeFormed(
        task_id=task_id,
        round=0,
        members=members,
        draws=packed,
        skips=skips,
        report_deadline=report_dl,
        claims_until=claims_until,
    )


@external
@nonreentrant
def report(task_id: uint256, t: Task, result: Bytes[1024], sigs: Bytes[SIGS_BYTES]):
    """
    @notice Submit the committee's result with a quorum of seat-holder signatures.
    @dev Signed message: keccak256(abi_encode(keccak256("dnode.report.v1"), chain.id, this,
         task_id, keccak256(result))), EIP-191 prefixed, 65-byte r||s||v, low s. An invalid,
         foreign or duplicate signer rejects the whole report; a declined seat's signature
         is skipped. Seat holders left out may add their signature with cosign() during the
         challenge window (and are paid). When the formation skipped candidates, the report
         waits for the end of the claim period. Only one report is ever accepted.
    @param task_id task the result belongs to
    @param t the task record
    @param result public result bytes (emitted; only its digest is kept, and the bytes
           themselves when the task named a callback)
    @param sigs signatures over the report hash, one per signer
    """
    status: uint256 = self._load(task_id, t)
    assert status == COMPUTING, "oracle: task not computing"
    assert block.timestamp <= self._get(t.meta, REPORT_DL_OFF, 40), (
        "oracle: report deadline passed"
    )
    if self._get(t.meta, SKIPS_OFF, 8) > 0:
        assert block.timestamp >= self._get(t.meta, REPORTED_AT_OFF, 40), (
            "oracle: seat claims still open"
        )
    digest: bytes32 = keccak256(result)
    bitmap: uint256 = self._check_signatures(
        self._report_hash(task_id, digest), sigs, t.committee, self._get(t.meta, DECLINED_OFF, 16)
    )
    nt: Task = t
    meta: uint256 = self._put(t.meta, SIGNERS_OFF, 16, bitmap)
    nt.meta = self._put(meta, REPORTED_AT_OFF, 40, block.timestamp)
    nt.result_digest = digest
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
    reported_at: uint256 = self._get(t.meta, REPORTED_AT_OFF, 40)
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
def cosign(task_id: uint256, t: Task, sig: Bytes[SIGS_BYTES]):
    """
    @notice Add a seat holder's signature to an accepted report during the challenge window,
            so a signer the reporter left out is paid like the others at finalization.
    @dev `sig` is one 65-byte signature over the same report hash (it proves the signer's
         agreement; anyone may submit it). Declined seats cannot co-sign.
    @param task_id reported task
    @param t the task record
    @param sig the seat holder's report signature
    """
    assert self._load(task_id, t) == REPORTED, "oracle: not reported"
    assert block.timestamp < self._get(t.meta, REPORTED_AT_OFF, 40) + challenge_period, (
        "market: challenge window closed"
    )
    assert len(sig) == SIG_LEN, "oracle: malformed signature"
    signer: address = self._recover(self._report_hash(task_id, t.result_digest), sig, 0)
    idx: uint256 = NOT_SEATED
    for i: uint256 in range(len(t.committee), bound=MAX_SEATS):
        if t.committee[i] == signer:
            idx = i
            break
    assert idx != NOT_SEATED, "oracle: signer not in committee"
    bit: uint256 = 1 << idx
    assert self._get(t.meta, DECLINED_OFF, 16) & bit == 0, "oracle: signer declined"
    signers: uint256 = self._get(t.meta, SIGNERS_OFF, 16)
    assert signers & bit == 0, "oracle: already signed"
    nt: Task = t
    nt.meta = self._put(t.meta, SIGNERS_OFF, 16, signers | bit)
    self._store(task_id, nt, REPORTED)
    log CoSigned(task_id=task_id, node=signer, seat=idx, signers_bitmap=signers | bit)


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

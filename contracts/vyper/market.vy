# pragma version 0.4.3
"""
@title dnode compute market
@notice Requesters post tasks with escrowed reward; active nodes claim committee seats by
        locking seat collateral; unfilled or unreported tasks are refunded.
@dev Per-task scalars are packed into two words (`head`, `meta`) to keep the lifecycle cheap;
     see the layout constants below.
"""

import registry

uses: registry

MAX_COMMITTEE: constant(uint256) = 16
MIN_COMMITTEE: constant(uint256) = 3

# task status (numbers are part of the public interface)
ST_NONE: constant(uint256) = 0  # never written; default of unknown ids
OPEN: constant(uint256) = 1
COMPUTING: constant(uint256) = 2
REPORTED: constant(uint256) = 3
FINALIZED: constant(uint256) = 4
REFUNDED: constant(uint256) = 5

# head = requester (bits 0..159) | reward (bits 160..255)
MAX_REWARD: constant(uint256) = (1 << 96) - 1
# meta layout: (offset, width)
ST_OFF: constant(uint256) = 0
CAP_OFF: constant(uint256) = 8
SIZE_OFF: constant(uint256) = 16
TAKEN_OFF: constant(uint256) = 24
SIGNERS_OFF: constant(uint256) = 32
SEAT_DL_OFF: constant(uint256) = 48
REPORT_DL_OFF: constant(uint256) = 112
REPORTED_AT_OFF: constant(uint256) = 176
MAX_TIME: constant(uint256) = (1 << 64) - 1


struct Task:
    head: uint256
    program_id: bytes32
    params_digest: bytes32
    meta: uint256
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

event SeatClaimed:
    task_id: indexed(uint256)
    node: indexed(address)
    seat: uint256

event CommitteeFormed:
    task_id: indexed(uint256)

event TaskRefunded:
    task_id: indexed(uint256)
    requester: indexed(address)
    amount: uint256


tasks: HashMap[uint256, Task]
seats: HashMap[uint256, address[MAX_COMMITTEE]]
results: HashMap[uint256, Bytes[1024]]
task_count: public(uint256)


# ---------------------------------------------------------------- packing helpers


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
def _requester(head: uint256) -> address:
    return convert(convert(head % (1 << 160), uint160), address)


@internal
@pure
def _reward(head: uint256) -> uint256:
    return head >> 160


@internal
@pure
def _status(meta: uint256) -> uint256:
    return meta & 255


@internal
@pure
def _size(meta: uint256) -> uint256:
    return (meta >> SIZE_OFF) & 255


@internal
@pure
def _taken(meta: uint256) -> uint256:
    return (meta >> TAKEN_OFF) & 255


@internal
@pure
def _signers(meta: uint256) -> uint256:
    return (meta >> SIGNERS_OFF) & 65535


@internal
@pure
def _with_status(meta: uint256, status: uint256) -> uint256:
    return (meta & ~convert(255, uint256)) | status


@internal
def _unlock_all(task_id: uint256, taken: uint256):
    for i: uint256 in range(taken, bound=MAX_COMMITTEE):
        registry._unlock_seat(self.seats[task_id][i])


# ---------------------------------------------------------------- external


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
) -> uint256:
    """
    @notice Post a compute task, escrowing msg.value as the committee's reward.
    @param program_id identifier of the program the committee runs
    @param params_digest digest of the (off-chain) task parameters
    @param capability required node capability bit (MPC=1 or HE=2)
    @param committee_size number of seats m, 3..16; quorum is m // 2 + 1
    @param seat_deadline absolute timestamp until which seats may be claimed
    @param report_deadline absolute timestamp until which a result may be reported
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

    task_id: uint256 = self.task_count + 1
    self.task_count = task_id
    meta: uint256 = (
        OPEN
        | (capability << CAP_OFF)
        | (committee_size << SIZE_OFF)
        | (seat_deadline << SEAT_DL_OFF)
        | (report_deadline << REPORT_DL_OFF)
    )
    # field-wise writes: skips the zero result_digest slot
    self.tasks[task_id].head = convert(msg.sender, uint256) | (msg.value << 160)
    self.tasks[task_id].program_id = program_id
    self.tasks[task_id].params_digest = params_digest
    self.tasks[task_id].meta = meta
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
    )
    return task_id


@external
@nonreentrant
def claim_seat(task_id: uint256):
    """
    @notice Take the next free committee seat of an open task, locking seat_collateral.
    @dev Seat index = claim order. Taking the last seat moves the task to COMPUTING.
    @param task_id task to join
    """
    meta: uint256 = self.tasks[task_id].meta
    status: uint256 = self._status(meta)
    assert status != COMPUTING, "market: committee full"
    assert status == OPEN, "market: task not open"
    assert block.timestamp <= self._get(meta, SEAT_DL_OFF, 64), "market: seat deadline passed"
    assert registry._is_registered(msg.sender), "market: not registered"
    cap: uint256 = self._get(meta, CAP_OFF, 8)
    assert registry._capabilities(msg.sender) & cap == cap, "market: missing capability"
    assert registry._is_active(msg.sender), "market: node not active"
    taken: uint256 = self._taken(meta)
    for i: uint256 in range(taken, bound=MAX_COMMITTEE):
        assert self.seats[task_id][i] != msg.sender, "market: already seated"

    registry._lock_seat(msg.sender)
    self.seats[task_id][taken] = msg.sender
    log SeatClaimed(task_id=task_id, node=msg.sender, seat=taken)
    taken += 1
    meta = self._put(meta, TAKEN_OFF, 8, taken)
    if taken == self._size(meta):
        meta = self._with_status(meta, COMPUTING)
        log CommitteeFormed(task_id=task_id)
    self.tasks[task_id].meta = meta


@external
@nonreentrant
def refund(task_id: uint256):
    """
    @notice Return the escrow of a task that missed a deadline to its requester's credits.
    @dev Allowed when OPEN after seat_deadline, or COMPUTING after report_deadline.
         Seat collateral is unlocked (slashing of non-delivering seats is future work).
    @param task_id task to refund
    """
    t: Task = self.tasks[task_id]
    meta: uint256 = t.meta
    status: uint256 = self._status(meta)
    if status == OPEN:
        assert block.timestamp > self._get(meta, SEAT_DL_OFF, 64), "market: seating still open"
    elif status == COMPUTING:
        assert block.timestamp > self._get(meta, REPORT_DL_OFF, 64), "market: report still due"
    else:
        raise "market: not refundable"
    self.tasks[task_id].meta = self._with_status(meta, REFUNDED)
    self._unlock_all(task_id, self._taken(meta))
    requester: address = self._requester(t.head)
    amount: uint256 = self._reward(t.head)
    registry._credit(requester, task_id, amount)
    log TaskRefunded(task_id=task_id, requester=requester, amount=amount)


@external
@view
def task_info(task_id: uint256) -> (
    address, bytes32, bytes32, uint256, uint256, uint256, uint256, uint256, uint256, uint256,
    uint256, uint256, bytes32
):
    """
    @notice All fields of a task.
    @return (requester, program_id, params_digest, capability, committee_size, quorum, reward,
             seat_deadline, report_deadline, status, seats_taken, reported_at, result_digest)
    """
    t: Task = self.tasks[task_id]
    m: uint256 = self._size(t.meta)
    quorum: uint256 = 0
    if m > 0:
        quorum = m // 2 + 1
    return (
        self._requester(t.head),
        t.program_id,
        t.params_digest,
        self._get(t.meta, CAP_OFF, 8),
        m,
        quorum,
        self._reward(t.head),
        self._get(t.meta, SEAT_DL_OFF, 64),
        self._get(t.meta, REPORT_DL_OFF, 64),
        self._status(t.meta),
        self._taken(t.meta),
        self._get(t.meta, REPORTED_AT_OFF, 64),
        t.result_digest,
    )


@external
@view
def signers_bitmap(task_id: uint256) -> uint256:
    """
    @notice Bitmap of seat indexes whose signatures were in the accepted report.
    """
    return self._signers(self.tasks[task_id].meta)


@external
@view
def seat(task_id: uint256, index: uint256) -> address:
    """
    @notice Holder of seat `index` (zero address if not taken).
    """
    if index >= MAX_COMMITTEE:
        return empty(address)
    return self.seats[task_id][index]


@external
@view
def seat_index(task_id: uint256, node: address) -> int256:
    """
    @notice Seat index held by `node` in the task, or -1 if it holds none.
    """
    taken: uint256 = self._taken(self.tasks[task_id].meta)
    for i: uint256 in range(taken, bound=MAX_COMMITTEE):
        if self.seats[task_id][i] == node:
            return convert(i, int256)
    return -1

# pragma version 0.4.3
"""
@title PriceFeed: a price set from the network's mean of private inputs
@notice Example dnode consumer (docs/protocol.md, "Consuming results"). The owner asks the
        network for the mean of values that data owners keep private (say, each dealer's
        sale price); the committee computes it by MPC and, at finalization, dnode calls
        on_task_result, which sets `price`. No single party ever sees another's input.
@dev Compile with contracts/vyper on the search path (it imports the dnode interfaces).
     Only the owner may request (the task's params name the data owners whose inputs count).
     Refunds of cancelled tasks are credited by dnode to this contract; `sweep` pulls them and
     forwards everything to the owner.
"""

from interfaces import IDnodeConsumer
from interfaces import IDnodeOracle

implements: IDnodeConsumer

MPC: constant(uint256) = 1
FINALIZED: constant(uint256) = 4
OVERTURNED: constant(uint256) = 8  # a dispute replaced the result: result_of has the new one
MAX_VALUES: constant(uint256) = 16
# what on_task_result needs: decode (~3k) + 5 storage writes (~60k cold) + event
CALLBACK_GAS: constant(uint256) = 150_000

ORACLE: public(immutable(IDnodeOracle))
PROGRAM_ID: public(immutable(bytes32))  # the program asked for, e.g. mpc.mean

owner: public(address)
# task id -> asked by this contract and not answered yet
pending: public(HashMap[uint256, bool])
price: public(int256)  # fixed-point, `decimals` decimal places
decimals: public(uint8)
samples: public(uint256)  # how many private values the mean is over
updated_by: public(uint256)  # task whose result set the price (0: never set)


event PriceRequested:
    task_id: indexed(uint256)
    params_digest: bytes32
    reward: uint256

event PriceUpdated:
    task_id: indexed(uint256)
    price: int256
    decimals: uint8
    samples: uint256

event Swept:
    to: indexed(address)
    amount: uint256


@deploy
def __init__(oracle: address, program_id: bytes32):
    """
    @param oracle the dnode contract (deployment manifest `address`)
    @param program_id keccak256 program id of the aggregate to run (mpc.mean)
    """
    ORACLE = IDnodeOracle(oracle)
    PROGRAM_ID = program_id
    self.owner = msg.sender


@external
@payable
def request(
    params_digest: bytes32, committee_size: uint256, seat_window: uint256, compute_window: uint256
) -> uint256:
    """
    @notice Post a task (msg.value is its reward) naming this contract as callback. The owner
            then announces the params off-chain: dnode task announce TASK_ID --params FILE.
    @param params_digest keccak256 of the canonical task params (program, data owners, ...)
    @param committee_size committee seats m (3..16)
    @param seat_window seconds from now to form the committee
    @param compute_window seconds the committee has from its formation to report
           (>= dnode's min_compute_window)
    @return the dnode task id
    """
    assert msg.sender == self.owner, "feed: not owner"
    task_id: uint256 = extcall ORACLE.post_task(
        PROGRAM_ID,
        params_digest,
        MPC,
        committee_size,
        block.timestamp + seat_window,
        compute_window,
        self,
        CALLBACK_GAS,
        value=msg.value,
    )
    self.pending[task_id] = True
    log PriceRequested(task_id=task_id, params_digest=params_digest, reward=msg.value)
    return task_id


@internal
def _apply(task_id: uint256, result: Bytes[1024]):
    assert self.pending[task_id], "feed: not a pending request"
    self.pending[task_id] = False
    values: DynArray[int256, MAX_VALUES] = []
    dec: uint8 = 0
    count: uint256 = 0
    values, dec, count = abi_decode(result, (DynArray[int256, MAX_VALUES], uint8, uint256))
    assert len(values) > 0, "feed: empty result"
    if task_id < self.updated_by:
        return  # an older request finished after a newer one: keep the newer price
    self.price = values[0]
    self.decimals = dec
    self.samples = count
    self.updated_by = task_id
    log PriceUpdated(task_id=task_id, price=values[0], decimals=dec, samples=count)


@external
def on_task_result(task_id: uint256, result: Bytes[1024]):
    """
    @notice dnode's callback: decode the attested mean and set the price.
    @dev Only dnode may call, only for tasks this contract posted, once each.
    """
    assert msg.sender == ORACLE.address, "feed: caller is not dnode"
    self._apply(task_id, result)


@external
def sync(task_id: uint256):
    """
    @notice Apply a result that got no callback: a finalized task whose callback failed (e.g.
            ran out of its gas cap), or an overturned one (the re-execution's result, which
            dnode does not call back with). Anyone may call; the result is read from result_of.
    """
    status: uint256 = 0
    digest: bytes32 = empty(bytes32)
    result: Bytes[1024] = b""
    status, digest, result = staticcall ORACLE.result_of(task_id)
    assert status == FINALIZED or status == OVERTURNED, "feed: no final result"
    self._apply(task_id, result)


@external
def sweep():
    """
    @notice Pull this contract's dnode credits (refunds) and send its whole balance to the owner.
    """
    assert msg.sender == self.owner, "feed: not owner"
    if staticcall ORACLE.credits(self) > 0:
        extcall ORACLE.withdraw()
    amount: uint256 = self.balance
    send(self.owner, amount)
    log Swept(to=self.owner, amount=amount)


@external
@payable
def __default__():
    """
    @notice Receives refunds from dnode's withdraw(); nothing else may send ETH here.
    """
    assert msg.sender == ORACLE.address, "feed: unexpected payment"

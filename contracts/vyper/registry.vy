# pragma version 0.4.3
"""
@title dnode accounts: node registry, stake, seat collateral, slashing, pull payments
@notice Node operators register a libp2p peer id and stake ETH. Every account (node,
        requester, disputer) has one packed word holding its stake, credits and the number
        of committee seats whose collateral is locked, so the task lifecycle touches one
        storage slot per member per step. All money leaves through the single `withdraw()`.
@dev Account word layout (bits): stake 0..95 | credits 96..191 | seats 192..207 |
     capabilities 208..215 | registered 216 | priced 217 | capacity 218..231 |
     slots owned 232..255.
     locked = seats * seat_collateral <= stake.
     Sortition slots (see scheduler/sortition.py and docs/protocol.md): one append-only array
     `slots`, word = owner | k << 160 (k: rank of the slot among its owner's slots). A node is
     owed stake // seat_collateral slots; a slot counts only while k < stake // seat_collateral,
     so unbonding and slashing never touch the array and slots never move. stake() appends at
     most MAX_SLOT_SYNC owed slots per call; sync_slots() appends the rest in further calls.
     Terms: capacity (most seats held at once; 0 = undeclared, unbounded) lives in the account
     word, so checking it is free; the price per seat lives in `prices` and is only read
     when the priced bit is set (a node asking 0 costs no extra read per seat).
"""

MPC: constant(uint256) = 1
HE: constant(uint256) = 2
KNOWN_CAPABILITIES: constant(uint256) = 3

AMOUNT_MASK: constant(uint256) = (1 << 96) - 1
STAKE_OFF: constant(uint256) = 0
CREDIT_OFF: constant(uint256) = 96
SEATS_OFF: constant(uint256) = 192
SEATS_MASK: constant(uint256) = (1 << 16) - 1
CAPS_OFF: constant(uint256) = 208
REG_BIT: constant(uint256) = 1 << 216
ONE_SEAT: constant(uint256) = 1 << SEATS_OFF
PRICED_BIT: constant(uint256) = 1 << 217
CAPACITY_OFF: constant(uint256) = 218
CAPACITY_MASK: constant(uint256) = (1 << 14) - 1
SLOTS_OFF: constant(uint256) = 232
SLOTS_MASK: constant(uint256) = (1 << 24) - 1
ADDR_MASK: constant(uint256) = (1 << 160) - 1
MAX_SLOT_SYNC: constant(uint256) = 64  # slots appended per call (gas bound, ~25k gas each)
# most seats an account holds at once whatever its declared capacity: the 16-bit counter
# never wraps into the capability bits (issue 12, attack 4)
MAX_SEATS_HELD: constant(uint256) = SEATS_MASK
MAX_PERIOD: constant(uint256) = 1 << 32  # any period in seconds (packed 40-bit timestamps)


struct Unbond:
    amount: uint256
    unbond_at: uint256


event NodeRegistered:
    node: indexed(address)
    peer_id: String[64]
    capabilities: uint256

event Staked:
    node: indexed(address)
    amount: uint256
    total: uint256

event Unbonding:
    node: indexed(address)
    amount: uint256
    unbonding: uint256
    unbond_at: uint256

event Unbonded:
    node: indexed(address)
    amount: uint256

event SlotsAdded:
    node: indexed(address)
    first: uint256
    count: uint256
    owned: uint256

event TermsSet:
    node: indexed(address)
    price: uint256
    capacity: uint256

event Withdrawn:
    account: indexed(address)
    amount: uint256


min_stake: public(immutable(uint256))
seat_collateral: public(immutable(uint256))
unbond_delay: public(immutable(uint256))

accounts: HashMap[address, uint256]
peer_ids: HashMap[address, String[64]]
# keccak256(peer_id) -> operator address
peer_owner: HashMap[bytes32, address]
unbonds: HashMap[address, Unbond]
# sortition slots: owner | k << 160, append-only
slots: HashMap[uint256, uint256]
slot_count: public(uint256)
# declared price per seat (read only when the account's priced bit is set)
prices: HashMap[address, uint256]


@deploy
def __init__(_min_stake: uint256, _seat_collateral: uint256, _unbond_delay: uint256):
    assert _seat_collateral > 0, "registry: zero seat collateral"
    assert _seat_collateral <= AMOUNT_MASK and _min_stake <= AMOUNT_MASK, "registry: too large"
    assert _unbond_delay <= MAX_PERIOD, "registry: unbond delay too long"
    min_stake = _min_stake
    seat_collateral = _seat_collateral
    unbond_delay = _unbond_delay


# ---------------------------------------------------------------- word helpers


@internal
@pure
def _stake_of(word: uint256) -> uint256:
    return word & AMOUNT_MASK


@internal
@pure
def _credits_of(word: uint256) -> uint256:
    return (word >> CREDIT_OFF) & AMOUNT_MASK


@internal
@pure
def _seats_of(word: uint256) -> uint256:
    return (word >> SEATS_OFF) & SEATS_MASK


@internal
@pure
def _add_credit(word: uint256, amount: uint256) -> uint256:
    credits: uint256 = ((word >> CREDIT_OFF) & AMOUNT_MASK) + amount
    assert credits <= AMOUNT_MASK, "registry: credit overflow"
    return (word & ~(AMOUNT_MASK << CREDIT_OFF)) | (credits << CREDIT_OFF)


@internal
@view
def _active_word(word: uint256) -> bool:
    """Registered, at least min_stake bonded and one more seat's collateral free."""
    if word & REG_BIT == 0:
        return False
    stake: uint256 = word & AMOUNT_MASK
    locked: uint256 = ((word >> SEATS_OFF) & SEATS_MASK) * seat_collateral
    return stake >= min_stake and stake - locked >= seat_collateral


# ---------------------------------------------------------------- internal API for modules


@internal
@view
def _is_staked(addr: address) -> bool:
    """Registered with at least min_stake bonded (locked or not)."""
    word: uint256 = self.accounts[addr]
    return word & REG_BIT != 0 and word & AMOUNT_MASK >= min_stake and word & AMOUNT_MASK > 0


@internal
def _lock_seat(addr: address, capability: uint256, offer: uint256):
    """Per-seat eligibility (registered, capability, free collateral, declared price <= the
    task's offer per seat, below declared capacity) and the lock itself."""
    word: uint256 = self.accounts[addr]
    assert word & REG_BIT != 0, "registry: not registered"
    assert (word >> CAPS_OFF) & capability == capability, "registry: missing capability"
    assert self._active_word(word), "registry: node not active"
    capacity: uint256 = (word >> CAPACITY_OFF) & CAPACITY_MASK
    assert capacity == 0 or self._seats_of(word) < capacity, "registry: node at capacity"
    assert self._seats_of(word) < MAX_SEATS_HELD, "registry: seat counter full"
    if word & PRICED_BIT != 0:
        assert self.prices[addr] <= offer, "registry: price above offer"
    self.accounts[addr] = word + ONE_SEAT


@internal
@view
def _eligible(addr: address, capability: uint256, offer: uint256) -> bool:
    """The checks of _lock_seat without the lock: whether a drawn owner ranked above a
    committee member could have taken the seat (else its draw is excused, not a skip)."""
    word: uint256 = self.accounts[addr]
    if (word >> CAPS_OFF) & capability != capability or not self._active_word(word):
        return False
    seats: uint256 = self._seats_of(word)
    capacity: uint256 = (word >> CAPACITY_OFF) & CAPACITY_MASK
    if (capacity != 0 and seats >= capacity) or seats >= MAX_SEATS_HELD:
        return False
    return word & PRICED_BIT == 0 or self.prices[addr] <= offer


@internal
@view
def _slot_holder(pos: uint256) -> address:
    """Owner of slot `pos` if the slot counts (owner still bonds enough stake), else zero."""
    if pos >= self.slot_count:
        return empty(address)
    w: uint256 = self.slots[pos]
    owner: address = convert(w & ADDR_MASK, address)
    if (w >> 160) >= (self.accounts[owner] & AMOUNT_MASK) // seat_collateral:
        return empty(address)
    return owner


@internal
def _sync_slots(addr: address):
    """Append up to MAX_SLOT_SYNC of the slots `addr` is owed (stake // seat_collateral)."""
    word: uint256 = self.accounts[addr]
    if word & REG_BIT == 0:
        return
    owned: uint256 = (word >> SLOTS_OFF) & SLOTS_MASK
    owed: uint256 = min((word & AMOUNT_MASK) // seat_collateral, SLOTS_MASK)
    if owed <= owned:
        return
    n: uint256 = min(owed - owned, MAX_SLOT_SYNC)
    first: uint256 = self.slot_count
    base: uint256 = convert(addr, uint256)
    for i: uint256 in range(n, bound=MAX_SLOT_SYNC):
        self.slots[first + i] = base | ((owned + i) << 160)
    self.slot_count = first + n
    self.accounts[addr] = (word & ~(SLOTS_MASK << SLOTS_OFF)) | ((owned + n) << SLOTS_OFF)
    log SlotsAdded(node=addr, first=first, count=n, owned=owned + n)


@internal
def _release_seat(addr: address, credit: uint256):
    """Unlock one seat's collateral and credit `credit` wei (one storage write)."""
    word: uint256 = self.accounts[addr] - ONE_SEAT
    if credit > 0:
        word = self._add_credit(word, credit)
    self.accounts[addr] = word


@internal
def _slash_seat(addr: address) -> uint256:
    """Burn one locked seat: its collateral leaves the node's stake. Returns the amount."""
    # seats * C <= stake, so stake >= C here and locked stays <= stake afterwards
    self.accounts[addr] = self.accounts[addr] - ONE_SEAT - seat_collateral
    return seat_collateral


@internal
def _credit(addr: address, amount: uint256):
    self.accounts[addr] = self._add_credit(self.accounts[addr], amount)


# ---------------------------------------------------------------- external


@external
@nonreentrant
def register(peer_id: String[64], capabilities: uint256):
    """
    @notice Register (or update) the caller as a node operator.
    @dev A peer id can belong to one address only; re-registering releases the old peer id.
    @param peer_id libp2p peer id (base58) the node is reachable under
    @param capabilities bitmask of supported compute kinds (MPC=1, HE=2)
    """
    assert len(peer_id) > 0, "registry: empty peer id"
    assert capabilities != 0, "registry: no capabilities"
    assert capabilities & ~KNOWN_CAPABILITIES == 0, "registry: unknown capability"
    key: bytes32 = keccak256(peer_id)
    owner: address = self.peer_owner[key]
    assert owner == empty(address) or owner == msg.sender, "registry: peer id taken"
    old: String[64] = self.peer_ids[msg.sender]
    if len(old) > 0:
        old_key: bytes32 = keccak256(old)
        if old_key != key:
            self.peer_owner[old_key] = empty(address)
    self.peer_owner[key] = msg.sender
    self.peer_ids[msg.sender] = peer_id
    word: uint256 = self.accounts[msg.sender] & ~(convert(255, uint256) << CAPS_OFF)
    self.accounts[msg.sender] = word | (capabilities << CAPS_OFF) | REG_BIT
    log NodeRegistered(node=msg.sender, peer_id=peer_id, capabilities=capabilities)


@external
@payable
@nonreentrant
def stake():
    """
    @notice Add msg.value to the caller's bonded stake (registered nodes only).
    """
    assert msg.value > 0, "registry: zero stake"
    word: uint256 = self.accounts[msg.sender]
    assert word & REG_BIT != 0, "registry: not registered"
    total: uint256 = (word & AMOUNT_MASK) + msg.value
    assert total <= AMOUNT_MASK, "registry: stake too large"
    self.accounts[msg.sender] = (word & ~AMOUNT_MASK) | total
    log Staked(node=msg.sender, amount=msg.value, total=total)
    self._sync_slots(msg.sender)


@external
@nonreentrant
def sync_slots(node: address):
    """
    @notice Append up to 64 more of the sortition slots `node` is owed (one per
            seat_collateral of bonded stake) when stake() could not append them all.
    @dev Anyone may call it: a node's slots only ever reflect its own bonded stake.
    @param node the registered node whose slots to append
    """
    word: uint256 = self.accounts[node]
    assert word & REG_BIT != 0, "registry: not registered"
    owned: uint256 = (word >> SLOTS_OFF) & SLOTS_MASK
    assert min((word & AMOUNT_MASK) // seat_collateral, SLOTS_MASK) > owned, (
        "registry: slots in sync"
    )
    self._sync_slots(node)


@external
def set_terms(price: uint256, capacity: uint256):
    """
    @notice Declare the caller's price per committee seat and how many seats it holds at
            once; a seat is only bound when price <= the task's offer (reward // m) and the
            node holds fewer than `capacity` seats. Undeclared: price 0, capacity unbounded.
    @param price wei per seat the node asks
    @param capacity most seats (tasks) held at once, 1..16383
    """
    word: uint256 = self.accounts[msg.sender]
    assert word & REG_BIT != 0, "registry: not registered"
    assert price <= AMOUNT_MASK, "registry: price too large"
    assert capacity > 0 and capacity <= CAPACITY_MASK, "registry: bad capacity"
    word = (word & ~(CAPACITY_MASK << CAPACITY_OFF)) | (capacity << CAPACITY_OFF)
    if price > 0:
        word |= PRICED_BIT
        self.prices[msg.sender] = price
    else:
        word &= ~PRICED_BIT
    self.accounts[msg.sender] = word
    log TermsSet(node=msg.sender, price=price, capacity=capacity)


@external
@nonreentrant
def unbond(amount: uint256):
    """
    @notice Move free (unlocked) stake into the unbonding bucket.
    @dev The whole unbonding bucket matures at block.timestamp + unbond_delay (the clock
         restarts on every call). Locked collateral cannot be unbonded, so a node cannot
         escape a slash by unbonding.
    @param amount wei to unbond; must not exceed stake - locked
    """
    assert amount > 0, "registry: zero amount"
    word: uint256 = self.accounts[msg.sender]
    stake: uint256 = word & AMOUNT_MASK
    locked: uint256 = self._seats_of(word) * seat_collateral
    assert stake - locked >= amount, "registry: stake locked or insufficient"
    u: Unbond = self.unbonds[msg.sender]
    unbonding: uint256 = u.amount + amount
    unbond_at: uint256 = block.timestamp + unbond_delay
    self.accounts[msg.sender] = word - amount
    self.unbonds[msg.sender] = Unbond(amount=unbonding, unbond_at=unbond_at)
    log Unbonding(node=msg.sender, amount=amount, unbonding=unbonding, unbond_at=unbond_at)


@external
@nonreentrant
def withdraw_unbonded():
    """
    @notice Move matured unbonding stake into the caller's withdrawable credits.
    """
    u: Unbond = self.unbonds[msg.sender]
    assert u.amount > 0, "registry: nothing unbonding"
    assert block.timestamp >= u.unbond_at, "registry: unbonding not matured"
    self.unbonds[msg.sender] = empty(Unbond)
    self._credit(msg.sender, u.amount)
    log Unbonded(node=msg.sender, amount=u.amount)


@external
@nonreentrant
def withdraw():
    """
    @notice Send all of the caller's credits (rewards, refunds, bonds, slash shares,
            unbonded stake; accumulated over any number of tasks) to the caller.
    @dev Pull payment. Credits are zeroed before the call; if the transfer fails the whole
         transaction reverts with "registry: transfer failed", so the credits are kept.
    """
    word: uint256 = self.accounts[msg.sender]
    amount: uint256 = self._credits_of(word)
    assert amount > 0, "registry: nothing to withdraw"
    self.accounts[msg.sender] = word & ~(AMOUNT_MASK << CREDIT_OFF)
    ok: bool = raw_call(msg.sender, b"", value=amount, revert_on_failure=False)
    assert ok, "registry: transfer failed"
    log Withdrawn(account=msg.sender, amount=amount)


@external
@view
def node_info(addr: address) -> (String[64], uint256, uint256, uint256, uint256, uint256):
    """
    @notice Full registry record of an account.
    @return (peer_id, capabilities, stake, locked, unbonding, unbond_at)
    """
    word: uint256 = self.accounts[addr]
    u: Unbond = self.unbonds[addr]
    return (
        self.peer_ids[addr],
        (word >> CAPS_OFF) & 255,
        word & AMOUNT_MASK,
        self._seats_of(word) * seat_collateral,
        u.amount,
        u.unbond_at,
    )


@external
@view
def credits(addr: address) -> uint256:
    """
    @notice Wei the account can withdraw now.
    """
    return self._credits_of(self.accounts[addr])


@external
@view
def seats_held(addr: address) -> uint256:
    """
    @notice Number of committee seats whose collateral the account has locked.
    """
    return self._seats_of(self.accounts[addr])


@external
@view
def node_of_peer(peer_id: String[64]) -> address:
    """
    @notice Operator address that registered a peer id (zero address if none).
    """
    return self.peer_owner[keccak256(peer_id)]


@external
@view
def is_active(addr: address) -> bool:
    """
    @notice Whether the node could take one more seat right now (ignoring capability).
    """
    return self._active_word(self.accounts[addr])


@external
@view
def node_terms(addr: address) -> (uint256, uint256, bool):
    """
    @notice A node's declared price per seat (wei) and capacity (seats at once).
    @return (price, capacity, declared); undeclared nodes ask 0 and have no capacity bound
    """
    word: uint256 = self.accounts[addr]
    capacity: uint256 = (word >> CAPACITY_OFF) & CAPACITY_MASK
    price: uint256 = 0
    if word & PRICED_BIT != 0:
        price = self.prices[addr]
    return (price, capacity, capacity != 0)


@external
@view
def slot_holder(pos: uint256) -> address:
    """
    @notice Owner of sortition slot `pos` if it counts (zero address: a miss).
    """
    return self._slot_holder(pos)


@external
@view
def slots_owned(addr: address) -> uint256:
    """
    @notice Sortition slots appended for `addr` (valid or not).
    """
    return (self.accounts[addr] >> SLOTS_OFF) & SLOTS_MASK

# pragma version 0.4.3
"""
@title dnode node registry
@notice Node operators register a libp2p peer id, stake ETH, and bond/unbond it.
        Also owns the pull-payment ledger (`credits`) that every other module pays into,
        so all money-moving code paths end in the single `withdraw()` below.
"""

MPC: constant(uint256) = 1
HE: constant(uint256) = 2
KNOWN_CAPABILITIES: constant(uint256) = 3


struct Node:
    peer_id: String[64]
    capabilities: uint256
    stake: uint256
    locked: uint256
    unbonding: uint256
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

event Credited:
    account: indexed(address)
    task_id: indexed(uint256)
    amount: uint256

event Withdrawn:
    account: indexed(address)
    amount: uint256


min_stake: public(immutable(uint256))
seat_collateral: public(immutable(uint256))
unbond_delay: public(immutable(uint256))

nodes: HashMap[address, Node]
# keccak256(peer_id) -> operator address
peer_owner: HashMap[bytes32, address]
credits: public(HashMap[address, uint256])


@deploy
def __init__(_min_stake: uint256, _seat_collateral: uint256, _unbond_delay: uint256):
    assert _seat_collateral > 0, "registry: zero seat collateral"
    min_stake = _min_stake
    seat_collateral = _seat_collateral
    unbond_delay = _unbond_delay


# ---------------------------------------------------------------- internal API for modules


@internal
@view
def _is_registered(addr: address) -> bool:
    return len(self.nodes[addr].peer_id) > 0


@internal
@view
def _is_active(addr: address) -> bool:
    """Registered, at least min_stake bonded and one seat's collateral free."""
    n: Node = self.nodes[addr]
    if len(n.peer_id) == 0:
        return False
    return n.stake >= min_stake and n.stake - n.locked >= seat_collateral


@internal
@view
def _capabilities(addr: address) -> uint256:
    return self.nodes[addr].capabilities


@internal
def _lock_seat(addr: address):
    self.nodes[addr].locked += seat_collateral


@internal
def _unlock_seat(addr: address):
    self.nodes[addr].locked -= seat_collateral


@internal
def _credit(account: address, task_id: uint256, amount: uint256):
    self.credits[account] += amount
    log Credited(account=account, task_id=task_id, amount=amount)


# ---------------------------------------------------------------- external


@external
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
    old: String[64] = self.nodes[msg.sender].peer_id
    if len(old) > 0:
        old_key: bytes32 = keccak256(old)
        if old_key != key:
            self.peer_owner[old_key] = empty(address)
    self.peer_owner[key] = msg.sender
    self.nodes[msg.sender].peer_id = peer_id
    self.nodes[msg.sender].capabilities = capabilities
    log NodeRegistered(node=msg.sender, peer_id=peer_id, capabilities=capabilities)


@external
@payable
@nonreentrant
def stake():
    """
    @notice Add msg.value to the caller's bonded stake.
    """
    assert msg.value > 0, "registry: zero stake"
    assert self._is_registered(msg.sender), "registry: not registered"
    total: uint256 = self.nodes[msg.sender].stake + msg.value
    self.nodes[msg.sender].stake = total
    log Staked(node=msg.sender, amount=msg.value, total=total)


@external
@nonreentrant
def unbond(amount: uint256):
    """
    @notice Move free (unlocked) stake into the unbonding bucket.
    @dev The whole unbonding bucket matures at block.timestamp + unbond_delay (the clock
         restarts on every call).
    @param amount wei to unbond; must not exceed stake - locked
    """
    assert amount > 0, "registry: zero amount"
    n: Node = self.nodes[msg.sender]
    assert n.stake - n.locked >= amount, "registry: stake locked or insufficient"
    unbonding: uint256 = n.unbonding + amount
    unbond_at: uint256 = block.timestamp + unbond_delay
    self.nodes[msg.sender].stake = n.stake - amount
    self.nodes[msg.sender].unbonding = unbonding
    self.nodes[msg.sender].unbond_at = unbond_at
    log Unbonding(node=msg.sender, amount=amount, unbonding=unbonding, unbond_at=unbond_at)


@external
@nonreentrant
def withdraw_unbonded():
    """
    @notice Move matured unbonding stake into the caller's withdrawable credits.
    """
    amount: uint256 = self.nodes[msg.sender].unbonding
    assert amount > 0, "registry: nothing unbonding"
    assert block.timestamp >= self.nodes[msg.sender].unbond_at, "registry: unbonding not matured"
    self.nodes[msg.sender].unbonding = 0
    self.nodes[msg.sender].unbond_at = 0
    self.credits[msg.sender] += amount
    log Unbonded(node=msg.sender, amount=amount)
    log Credited(account=msg.sender, task_id=0, amount=amount)


@external
@nonreentrant
def withdraw():
    """
    @notice Send all of the caller's credits to the caller (pull payment).
    @dev Credits are zeroed before the call; if the transfer fails the whole transaction
         reverts with "registry: transfer failed", so the credits are kept.
    """
    amount: uint256 = self.credits[msg.sender]
    assert amount > 0, "registry: nothing to withdraw"
    self.credits[msg.sender] = 0
    ok: bool = raw_call(msg.sender, b"", value=amount, revert_on_failure=False)
    assert ok, "registry: transfer failed"
    log Withdrawn(account=msg.sender, amount=amount)


@external
@view
def node_info(addr: address) -> (String[64], uint256, uint256, uint256, uint256, uint256):
    """
    @notice Full registry record of a node operator.
    @return (peer_id, capabilities, stake, locked, unbonding, unbond_at)
    """
    n: Node = self.nodes[addr]
    return n.peer_id, n.capabilities, n.stake, n.locked, n.unbonding, n.unbond_at


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
    @notice Whether the node could take a seat right now (ignoring task capability).
    """
    return self._is_active(addr)

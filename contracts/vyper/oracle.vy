# pragma version 0.4.3
"""
@title dnode result oracle
@notice Accepts one committee-signed result per task, then pays the signers after the
        challenge period.
@dev Signed message: keccak256(abi_encode(keccak256("dnode.report.v1"), chain.id, self,
     task_id, keccak256(result))), wrapped in the EIP-191 personal-sign prefix; signatures
     are 65-byte r || s || v with v in {27, 28} and low s.
"""

import registry
import market

uses: registry
uses: market

REPORT_TAG: constant(bytes32) = keccak256("dnode.report.v1")
# secp256k1 order / 2: larger s values are the malleable twin and are rejected
NOT_SEATED: constant(uint256) = 255
HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168

event ResultReported:
    task_id: indexed(uint256)
    result_digest: bytes32
    result: Bytes[1024]
    signers_bitmap: uint256

event TaskFinalized:
    task_id: indexed(uint256)


challenge_period: public(immutable(uint256))


@deploy
def __init__(_challenge_period: uint256):
    challenge_period = _challenge_period


@internal
@view
def _signed_hash(task_id: uint256, result_digest: bytes32) -> bytes32:
    digest: bytes32 = keccak256(abi_encode(REPORT_TAG, chain.id, self, task_id, result_digest))
    return keccak256(concat(b"\x19Ethereum Signed Message:\n32", digest))


@external
@nonreentrant
def report(task_id: uint256, result: Bytes[1024], signatures: DynArray[Bytes[65], 16]):
    """
    @notice Submit the committee's result with a quorum of seat-holder signatures.
    @dev Any invalid, foreign or duplicate signature rejects the whole report. Only the
         first valid report for a task is accepted.
    @param task_id task the result belongs to
    @param result public result bytes (stored and emitted)
    @param signatures 65-byte r||s||v signatures over the report hash, one per signer
    """
    meta: uint256 = market.tasks[task_id].meta
    status: uint256 = market._status(meta)
    assert status != market.REPORTED and status != market.FINALIZED, "oracle: already reported"
    assert status == market.COMPUTING, "oracle: task not computing"
    assert block.timestamp <= market._get(meta, market.REPORT_DL_OFF, 64), (
        "oracle: report deadline passed"
    )
    m: uint256 = market._size(meta)
    assert len(signatures) >= m // 2 + 1, "oracle: no quorum"

    result_digest: bytes32 = keccak256(result)
    h: bytes32 = self._signed_hash(task_id, result_digest)
    bitmap: uint256 = 0
    for sig: Bytes[65] in signatures:
        assert len(sig) == 65, "oracle: malformed signature"
        r: uint256 = convert(extract32(sig, 0), uint256)
        s: uint256 = convert(extract32(sig, 32), uint256)
        v: uint256 = convert(slice(sig, 64, 1), uint256)
        assert v == 27 or v == 28, "oracle: bad signature v"
        assert s != 0 and s <= HALF_N, "oracle: high-s signature"
        signer: address = ecrecover(h, v, r, s)
        assert signer != empty(address), "oracle: invalid signature"
        idx: uint256 = NOT_SEATED
        for i: uint256 in range(m, bound=market.MAX_COMMITTEE):
            if market.seats[task_id][i] == signer:
                idx = i
                break
        assert idx != NOT_SEATED, "oracle: signer not in committee"
        bit: uint256 = 1 << idx
        assert bitmap & bit == 0, "oracle: duplicate signer"
        bitmap |= bit

    meta = market._put(meta, market.SIGNERS_OFF, 16, bitmap)
    meta = market._put(meta, market.REPORTED_AT_OFF, 64, block.timestamp)
    market.tasks[task_id].meta = market._with_status(meta, market.REPORTED)
    market.tasks[task_id].result_digest = result_digest
    market.results[task_id] = result
    log ResultReported(
        task_id=task_id, result_digest=result_digest, result=result, signers_bitmap=bitmap
    )



@external
@nonreentrant
def finalize(task_id: uint256):
    """
    @notice Pay a reported task after the challenge period: the reward is split equally
            among the signing seats (rounding dust to the first signer) and all seat
            collateral is unlocked.
    @param task_id task to finalize
    """
    t: market.Task = market.tasks[task_id]
    meta: uint256 = t.meta
    status: uint256 = market._status(meta)
    assert status != market.FINALIZED, "oracle: already finalized"
    assert status == market.REPORTED, "oracle: not reported"
    reported_at: uint256 = market._get(meta, market.REPORTED_AT_OFF, 64)
    assert block.timestamp >= reported_at + challenge_period, "oracle: challenge period active"

    market.tasks[task_id].meta = market._with_status(meta, market.FINALIZED)
    bitmap: uint256 = market._signers(meta)
    n: uint256 = 0
    for i: uint256 in range(market.MAX_COMMITTEE):
        if bitmap & (1 << i) != 0:
            n += 1
    reward: uint256 = market._reward(t.head)
    share: uint256 = reward // n
    dust: uint256 = reward - share * n
    m: uint256 = market._size(meta)
    for i: uint256 in range(m, bound=market.MAX_COMMITTEE):
        node: address = market.seats[task_id][i]
        registry._unlock_seat(node)
        if bitmap & (1 << i) != 0:
            registry._credit(node, task_id, share + dust)
            dust = 0
    log TaskFinalized(task_id=task_id)


@external
@view
def result_of(task_id: uint256) -> (uint256, bytes32, Bytes[1024]):
    """
    @notice Status, result digest and public result bytes of a task.
    """
    return (
        market._status(market.tasks[task_id].meta),
        market.tasks[task_id].result_digest,
        market.results[task_id],
    )

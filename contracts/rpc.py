"""A JSON-RPC provider that rides out flaky endpoints: retries, backoff, failover.

Long-running nodes talk to public or self-hosted RPC endpoints that time out, reset
connections, answer 502/503/429 or "internal error" now and then. ``ResilientHTTPProvider``
sits under web3 so every call benefits:

- transient failures (connection refused/reset, timeouts, HTTP 5xx/429, garbled bodies,
  JSON-RPC "limit exceeded"/"internal error") are retried with exponential backoff and full
  jitter, moving to the next endpoint after each failure (failover, round robin);
- deterministic failures (execution reverted, invalid params, nonce too low, ...) are returned
  to web3 at once, which raises its usual typed errors: retrying would only repeat them;
- every endpoint must report the same chain id; one that does not is dropped from rotation;
- ``eth_sendRawTransaction`` is idempotent across retries: when a retry is refused (e.g.
  "already known" because the first attempt did reach the node and only the answer was
  lost), the provider asks for the transaction by hash and returns the hash if it is known.

Counters (requests, errors by kind, retries, failovers) feed the node's metrics.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from eth_utils import keccak
from web3 import HTTPProvider
from web3._utils.caching import handle_request_caching
from web3.types import RPCEndpoint, RPCResponse

from dnode.contracts.errors import EndpointChainMismatch, RpcRetriesExhausted

log = logging.getLogger("dnode.rpc")

# JSON-RPC error codes a healthy retry may cure (EIP-1474 "limit exceeded", "internal error",
# and the HTTP-style codes some gateways put in the body)
TRANSIENT_RPC_CODES = frozenset({-32005, -32603, 429, 502, 503, 504})
# messages that are never transient, whatever code a node picked for them
# (anvil answers EVM failures in eth_estimateGas, e.g. "EVM error CreateContractSizeLimit",
# with -32603: retried, they ended as "cannot reach the chain")
DETERMINISTIC_HINTS = (
    "revert",
    "invalid",
    "nonce too",
    "insufficient funds",
    "underpriced",
    "evm error",
    "out of gas",
)


@dataclass
class RetryPolicy:
    """How hard one call tries before it fails with ``RpcRetriesExhausted``."""

    attempts: int = 8  # total tries across all endpoints
    base_delay: float = 0.2  # seconds; doubles per retry
    max_delay: float = 2.0
    timeout: float = 30.0  # per HTTP request


@dataclass
class RpcStats:
    """Counters since start, read by the metrics endpoint (thread-safe increments)."""

    requests: int = 0
    retries: int = 0
    failovers: int = 0
    exhausted: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # kind -> count
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1

    def bump(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)


class TransientRpcError(Exception):
    """One failed attempt that a retry may cure (internal to this module)."""

    def __init__(self, kind: str, detail: str) -> None:
        self.kind, self.detail = kind, detail
        super().__init__(f"{kind}: {detail}")


def classify_response(response: Any) -> str | None:
    """The transient-error kind of a decoded JSON-RPC response, or None if it is final."""
    if not isinstance(response, dict):
        return "bad_response"
    err = response.get("error")
    if err is None:
        return None if "result" in response else "bad_response"
    if not isinstance(err, dict):
        return None
    message = str(err.get("message", "")).lower()
    if any(h in message for h in DETERMINISTIC_HINTS):
        return None
    code = err.get("code")
    if code in TRANSIENT_RPC_CODES or "rate limit" in message or "too many requests" in message:
        return "rpc_error"
    return None


class ResilientHTTPProvider(HTTPProvider):
    """An HTTPProvider over several endpoints with retries, backoff+jitter and failover."""

    def __init__(
        self,
        endpoints: Sequence[str],
        policy: RetryPolicy | None = None,
        *,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **kwargs: Any,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one RPC endpoint is required")
        self.policy = policy or RetryPolicy()
        super().__init__(
            endpoints[0],
            request_kwargs={"timeout": self.policy.timeout},
            exception_retry_configuration=None,  # this class does the retrying
            **kwargs,
        )
        self.endpoints = [str(e) for e in endpoints]
        self.stats = RpcStats()
        self._active = 0
        self._excluded: set[str] = set()
        self._chain_ids: dict[str, int] = {}
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._lock = threading.Lock()

    # ---- endpoint rotation ---------------------------------------------------------------

    @property
    def active_endpoint(self) -> str:
        return self.endpoints[self._active]

    def _fail_over(self, failed: str) -> None:
        with self._lock:
            if self.endpoints[self._active] != failed:
                return  # another thread already moved on
            usable = [e for e in self.endpoints if e not in self._excluded]
            if len(usable) < 2:
                return
            i = self._active
            while True:
                i = (i + 1) % len(self.endpoints)
                if self.endpoints[i] not in self._excluded:
                    break
            self._active = i
            self.endpoint_uri = self.endpoints[i]  # type: ignore[assignment]
        self.stats.bump("failovers")
        log.warning("RPC endpoint %s failing; switched to %s", failed, self.endpoints[i])

    def _exclude(self, endpoint: str) -> None:
        with self._lock:
            self._excluded.add(endpoint)
        self._fail_over(endpoint)

    # ---- chain id agreement --------------------------------------------------------------

    def _post(self, endpoint: str, method: str, params: Any) -> Any:
        """One HTTP attempt; transport-level trouble becomes TransientRpcError."""
        data = self.encode_rpc_request(RPCEndpoint(method), params)
        try:
            raw = self._request_session_manager.make_post_request(
                endpoint,  # type: ignore[arg-type]
                data,
                **self.get_request_kwargs(),
            )
        except requests.HTTPError as e:
            status = e.response.status_code if e.response is not None else 0
            if status >= 500 or status == 429:
                raise TransientRpcError(f"http_{status}", str(e)) from None
            raise
        except (requests.ConnectionError, ConnectionError) as e:
            raise TransientRpcError("connection", type(e).__name__) from None
        except requests.Timeout as e:
            raise TransientRpcError("timeout", type(e).__name__) from None
        except OSError as e:
            raise TransientRpcError("connection", type(e).__name__) from None
        try:
            response = self.decode_rpc_response(raw)
        except (ValueError, UnicodeDecodeError, json.JSONDecodeError):
            raise TransientRpcError("bad_response", "undecodable body") from None
        kind = classify_response(response)
        if kind is not None:
            err = response.get("error") if isinstance(response, dict) else None
            raise TransientRpcError(kind, json.dumps(err) if err else "no result")
        return response

    def check_chain_ids(self) -> int | None:
        """Ask every endpoint its chain id; endpoints that disagree with the first answer are
        an operator mistake (EndpointChainMismatch). Unreachable ones are checked on first use.
        Returns the agreed chain id (None if no endpoint answered)."""
        for endpoint in self.endpoints:
            self._chain_id_of(endpoint, strict=True)
        return next(iter(self._chain_ids.values()), None)

    def _chain_id_of(self, endpoint: str, *, strict: bool) -> None:
        if endpoint in self._chain_ids:
            return
        try:
            resp = self._post(endpoint, "eth_chainId", [])
        except (TransientRpcError, requests.RequestException):
            return  # checked again when this endpoint is next used
        if not isinstance(resp, dict) or "result" not in resp:
            return
        cid = int(resp["result"], 16) if isinstance(resp["result"], str) else int(resp["result"])
        known = next(iter(self._chain_ids.values()), None)
        if known is not None and cid != known:
            if strict:
                raise EndpointChainMismatch(endpoint, known, cid)
            log.error("RPC endpoint %s is on chain %d, not %d: not used", endpoint, cid, known)
            self._exclude(endpoint)
            return
        self._chain_ids[endpoint] = cid

    # ---- requests ------------------------------------------------------------------------

    @handle_request_caching
    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        self.stats.bump("requests")
        p = self.policy
        last: TransientRpcError | None = None
        for attempt in range(p.attempts):
            endpoint = self.active_endpoint
            if len(self.endpoints) > 1 and endpoint not in self._chain_ids:
                self._chain_id_of(endpoint, strict=False)
                if endpoint in self._excluded:
                    continue
            try:
                response = self._post(endpoint, method, params)
            except TransientRpcError as e:
                last = e
                self.stats.count_error(e.kind)
                if attempt + 1 >= p.attempts:
                    break
                self.stats.bump("retries")
                self._fail_over(endpoint)
                # full jitter: uniform in [0, min(cap, base * 2^attempt)]
                delay = self._rng.uniform(0, min(p.max_delay, p.base_delay * 2**attempt))
                log.debug("rpc %s via %s failed (%s); retry in %.2f s", method, endpoint, e, delay)
                self._sleep(delay)
                continue
            if attempt and method == "eth_sendRawTransaction" and "error" in response:
                response = self._resend_outcome(endpoint, params, response)
            return response  # type: ignore[no-any-return]
        self.stats.bump("exhausted")
        assert last is not None
        raise RpcRetriesExhausted(
            ", ".join(self.endpoints), method, p.attempts, last.kind, last.detail
        )

    def _resend_outcome(self, endpoint: str, params: Any, refused: Any) -> Any:
        """A retried raw transaction was refused: if an earlier attempt got it in, succeed."""
        raw = params[0] if isinstance(params, list | tuple) and params else None
        if not isinstance(raw, str | bytes):
            return refused
        raw_bytes = bytes.fromhex(raw.removeprefix("0x")) if isinstance(raw, str) else raw
        tx_hash = "0x" + keccak(raw_bytes).hex()
        p = self.policy
        known: Any = None
        for attempt in range(p.attempts):  # the lookup meets the same flaky endpoint
            try:
                known = self._post(endpoint, "eth_getTransactionByHash", [tx_hash])
                break
            except TransientRpcError as e:
                self.stats.count_error(e.kind)
                if attempt + 1 >= p.attempts:
                    return refused
                self.stats.bump("retries")
                self._sleep(self._rng.uniform(0, min(p.max_delay, p.base_delay * 2**attempt)))
        if isinstance(known, dict) and known.get("result"):
            log.info("transaction %s was already accepted by an earlier attempt", tx_hash)
            return {"jsonrpc": "2.0", "id": refused.get("id"), "result": tx_hash}
        return refused

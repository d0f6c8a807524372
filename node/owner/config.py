"""The owner agent's settings and datasets (one definition, with defaults), read from TOML.

Example (paths relative to the config file; amounts in wei or with a unit)::

    bootstrap = ["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW..."]
    metrics_port = 0          # 127.0.0.1 port of /metrics and /status; -1: off
    log_format = "json"

    [[dataset]]
    name = "sales"
    file = "sales.csv"
    [dataset.policy]
    programs = ["mpc.mean", "mpc.quantiles"]   # names, globs, 0x ids or family:NAME
    min_reward = "0.1ether"
    rate_limit = 10                             # tasks per hour
    requesters_deny = ["0x..."]
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dnode.contracts.units import parse_amount
from dnode.node.chainwatch import DEFAULT_CONFIRMATIONS
from dnode.node.owner.errors import OwnerConfigError
from dnode.node.owner.policy import PENDING, REJECT, Policy


@dataclass(frozen=True)
class Dataset:
    """One table the owner offers: ``dataset_id`` is its on-chain id once datasets are
    registered (0: none yet; tasks then find it by the columns they name)."""

    name: str
    file: Path
    policy: Policy = field(default_factory=Policy)
    dataset_id: int = 0


@dataclass
class OwnerConfig:
    home: Path
    datasets: tuple[Dataset, ...] = ()
    listen: list[str] = field(default_factory=lambda: ["/ip4/127.0.0.1/tcp/0"])
    bootstrap: list[str] = field(default_factory=list)
    poll_interval: float = 1.0  # seconds between chain polls
    confirmations: int = DEFAULT_CONFIRMATIONS
    retry_interval: float = 2.0  # seconds between deliveries to a seat that has not acked
    notice_interval: float = 30.0  # seconds between re-sends of the owner's notices
    metrics_port: int | None = 0  # 127.0.0.1 port of /metrics and /status; 0: any, None: off
    log_format: str = "text"
    lookback: int = 1000  # blocks of history a starting agent replays

    @property
    def state_dir(self) -> Path:
        return self.home / "owner-state"


SETTINGS = {f.name for f in fields(OwnerConfig)} - {"home", "datasets"}
POLICY_KEYS = {f.name for f in fields(Policy)}
FLOAT_SETTINGS = {"poll_interval", "retry_interval", "notice_interval"}


def parse_wei(value: Any, where: str) -> int:
    """An amount: an integer of wei, or a string such as "0.5ether", "2gwei"."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    try:
        return parse_amount(str(value))
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def _strs(v: Any, where: str) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"{where} must be a list of strings")
    return tuple(v)


def parse_policy(raw: Any, where: str) -> Policy:
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a table")
    unknown = sorted(set(raw) - POLICY_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}")
    kw: dict[str, Any] = {}
    for k in ("programs", "requesters_allow", "requesters_deny"):
        if k in raw:
            kw[k] = _strs(raw[k], f"{where}.{k}")
    for k in ("min_reward", "min_price"):
        if k in raw:
            kw[k] = parse_wei(raw[k], f"{where}.{k}")
    if "max_privacy_cost" in raw:
        v = raw["max_privacy_cost"]
        if not isinstance(v, int | float) or isinstance(v, bool) or v < 0:
            raise ValueError(f"{where}.max_privacy_cost must be a number >= 0")
        kw["max_privacy_cost"] = float(v)
    if "rate_limit" in raw:
        v = raw["rate_limit"]
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError(f"{where}.rate_limit must be an integer >= 0 (tasks per hour)")
        kw["rate_limit"] = v
    if "outside" in raw:
        if raw["outside"] not in (PENDING, REJECT):
            raise ValueError(f'{where}.outside must be "pending" or "reject"')
        kw["outside"] = raw["outside"]
    return Policy(**kw)


def _setting(name: str, v: Any) -> Any:
    if name in ("listen", "bootstrap"):
        return list(_strs(v, name))
    if name == "metrics_port":
        if not isinstance(v, int) or isinstance(v, bool) or not -1 <= v <= 65535:
            raise ValueError("metrics_port must be -1..65535")
        return None if v < 0 else v
    if name == "log_format":
        if v not in ("text", "json"):
            raise ValueError('log_format must be "text" or "json"')
        return v
    if name in FLOAT_SETTINGS:
        if not isinstance(v, int | float) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"{name} must be a number > 0")
        return float(v)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ValueError(f"{name} must be an integer >= 0")
    return v


def load_config(path: Path, home: Path, **overrides: Any) -> OwnerConfig:
    """The config at ``path``; ``overrides`` (flags given on the command line) win."""
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as e:
        raise OwnerConfigError(str(path), f"cannot read: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise OwnerConfigError(str(path), f"not TOML: {e}") from None
    try:
        return _build(raw, path.parent, home, overrides)
    except ValueError as e:
        raise OwnerConfigError(str(path), str(e)) from None


def _build(raw: dict[str, Any], base: Path, home: Path, overrides: dict[str, Any]) -> OwnerConfig:
    unknown = sorted(set(raw) - SETTINGS - {"dataset"})
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}")
    cfg = OwnerConfig(home=home)
    for key in SETTINGS:
        if key in raw:
            setattr(cfg, key, _setting(key, raw[key]))
    for key, v in overrides.items():
        if v is not None:
            setattr(cfg, key, v)
    items = raw.get("dataset", [])
    if not isinstance(items, list) or not items:
        raise ValueError("no [[dataset]]: the agent needs at least one dataset")
    seen: set[str] = set()
    out = []
    for i, d in enumerate(items):
        where: str = f"dataset {i + 1}"
        if not isinstance(d, dict):
            raise ValueError(f"{where} must be a table")
        unknown = sorted(set(d) - {"name", "file", "policy", "dataset_id"})
        if unknown:
            raise ValueError(f"{where}: unknown key {unknown[0]!r}")
        name, file = d.get("name"), d.get("file")
        if not isinstance(name, str) or not name or not isinstance(file, str) or not file:
            raise ValueError(f"{where} needs a name and a file")
        if name in seen:
            raise ValueError(f"dataset {name!r} is listed twice")
        seen.add(name)
        did = d.get("dataset_id", 0)
        if not isinstance(did, int) or isinstance(did, bool) or did < 0:
            raise ValueError(f"dataset {name!r}: dataset_id must be an integer >= 0")
        p = Path(file).expanduser()
        out.append(
            Dataset(
                name=name,
                file=p if p.is_absolute() else base / p,
                policy=parse_policy(d.get("policy", {}), f"dataset {name!r} policy"),
                dataset_id=did,
            )
        )
    cfg.datasets = tuple(out)
    return cfg

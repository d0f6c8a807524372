"""The node's TOML config file: keys, types, defaults, and the commented template.

Precedence for every ``dnode start`` setting: command-line flag > ``DNODE_<KEY>`` environment
variable > config file (``--config``, default HOME/config.toml) > built-in default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnode.cli.context import DEFAULT_RPC, CliError
from dnode.node.chainwatch import DEFAULT_CONFIRMATIONS


class ConfigError(CliError):
    """The config file is unreadable, not TOML, or has an unknown key or a wrong type."""

    def __init__(self, path: Path, detail: str) -> None:
        self.path, self.detail = path, detail
        super().__init__(f"config {path}: {detail}")


@dataclass(frozen=True)
class Key:
    name: str
    kind: type
    default: Any
    help: str
    item: type | None = None  # element type of a list
    choices: tuple[str, ...] = ()

    @property
    def env(self) -> str:
        return "DNODE_" + self.name.upper()


KEYS: tuple[Key, ...] = (
    Key(
        "rpc_urls",
        list,
        [DEFAULT_RPC],
        "JSON-RPC endpoints of one chain, tried in order "
        "(failover); env DNODE_RPC_URL / flag --rpc-url",
        item=str,
    ),  # fmt: skip
    Key("listen", list, ["/ip4/127.0.0.1/tcp/0"], "libp2p listen multiaddrs", item=str),
    Key("bootstrap", list, [], "multiaddrs (with /p2p/<id>) of peers to join through", item=str),
    Key("mdns", bool, False, "discover peers on the LAN with mDNS"),
    Key("max_tasks", int, 4, "tasks this node runs at once"),
    Key("mpc_timeout", float, 120.0, "seconds an MPC session may take"),
    Key("poll_interval", float, 0.5, "seconds between chain polls"),
    Key(
        "confirmations",
        int,
        DEFAULT_CONFIRMATIONS,
        "blocks an event must be below the head before the node acts on it",
    ),  # fmt: skip
    Key(
        "metrics_port",
        int,
        0,
        "127.0.0.1 port of /metrics and /status; 0 picks a free one, -1 turns them off",
    ),  # fmt: skip
    Key(
        "log_format",
        str,
        "text",
        "text (human) or json (one object per line)",
        choices=("text", "json"),
    ),  # fmt: skip
    Key("rpc_timeout", float, 30.0, "seconds per JSON-RPC request before it is retried"),
    Key("rpc_attempts", int, 8, "tries per JSON-RPC call across all endpoints"),
    Key(
        "share_retention",
        float,
        600.0,
        "seconds a settled task's secret shares are kept before they are deleted",
    ),  # fmt: skip
)
BY_NAME = {k.name: k for k in KEYS}


def check_value(key: Key, value: Any, where: str) -> Any:
    """``value`` converted to the key's type, or a one-line error naming ``where``."""
    if key.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    ok = isinstance(value, key.kind) and not (key.kind is int and isinstance(value, bool))
    if ok and key.item is not None:
        ok = all(isinstance(v, key.item) for v in value)
    if not ok:
        want = f"list of {key.item.__name__}" if key.item else key.kind.__name__
        raise CliError(f"{where}: {key.name} must be a {want}, not {value!r}")
    if key.choices and value not in key.choices:
        raise CliError(f"{where}: {key.name} must be one of {', '.join(key.choices)}")
    return value


def load(path: Path) -> dict[str, Any]:
    """The settings a config file sets (only those), type-checked."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(path, e.strerror or str(e)) from None
    return load_text(text, path)


def load_text(text: str, path: Path) -> dict[str, Any]:
    """Like :func:`load` for text already read (``path`` names it in errors)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, f"not valid TOML: {e}") from None
    out: dict[str, Any] = {}
    for name, value in raw.items():
        key = BY_NAME.get(name)
        if key is None:
            raise ConfigError(path, f"unknown key {name!r} (known: {', '.join(BY_NAME)})")
        try:
            out[name] = check_value(key, value, "value")
        except CliError as e:
            raise ConfigError(path, e.message.removeprefix("value: ")) from None
    return out


def template() -> str:
    """The commented default config ``dnode init`` writes (every key at its default)."""
    lines = [
        "# dnode node configuration (read by `dnode start`).",
        "# Precedence: command-line flag > DNODE_<KEY> environment variable > this file >",
        "# built-in default. Uncomment a line to change it.",
        "",
    ]
    for k in KEYS:
        lines.append(f"# {k.help}")
        lines.append(f"# {k.name} = {_toml(k.default)}")
        lines.append("")
    return "\n".join(lines)


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return repr(v)

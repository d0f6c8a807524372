"""Accounts (encrypted keystores) and a node operator's stake."""

from __future__ import annotations

from pathlib import Path

import click
from eth_utils import to_checksum_address

from dnode.cli.context import CliError, Ctx, pass_ctx
from dnode.cli.units import AMOUNT, fmt_eth
from dnode.node import keystore
from dnode.node.p2p import peer_id_from_seed
from dnode.scheduler.programs.registry import CAPABILITY_BITS

CAPS = CAPABILITY_BITS  # capability name -> on-chain bit


@click.group("account")
def account() -> None:
    """Create, import and list keys (standard encrypted JSON keystores).

    \b
    Examples:
      dnode account new
      dnode --home ~/n1 account import --private-key-file key1.txt
      dnode --json account list
    """


@account.command("new")
@pass_ctx
def account_new(c: Ctx) -> None:
    """Create a new key in HOME/keystore.

    \b
    Examples:
      dnode account new
      dnode --home ~/n1 --password-file pw.txt account new
    """
    address, path = keystore.new_account(c.keystore_dir, c.password("New password", confirm=True))
    c.emit({"address": address, "keystore": str(path)}, f"created {address}\nkeystore {path}")


@account.command("import")
@click.option(
    "--private-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="File holding a 0x-hex private key (read, never copied in clear).",
)
@pass_ctx
def account_import(c: Ctx, private_key_file: Path) -> None:
    """Encrypt an existing private key into HOME/keystore.

    \b
    Examples:
      dnode --home ~/n1 account import --private-key-file key1.txt
    """
    key = private_key_file.read_text().strip()
    address, path = keystore.save_key(c.keystore_dir, key, c.password("New password", confirm=True))
    c.emit({"address": address, "keystore": str(path)}, f"imported {address}\nkeystore {path}")


@account.command("list")
@pass_ctx
def account_list(c: Ctx) -> None:
    """List the keys in HOME/keystore.

    \b
    Examples:
      dnode account list
      dnode --json --home ~/n1 account list
    """
    rows = keystore.list_accounts(c.keystore_dir)
    c.emit(
        {"accounts": [{"address": a, "keystore": str(p)} for a, p in rows]},
        "\n".join(f"{a}  {p}" for a, p in rows) or "no accounts (run `dnode account new`)",
    )


@click.command("stake")
@click.option("--amount", type=AMOUNT, required=True, help="Stake to add, e.g. 2ether.")
@click.option("--capabilities", default="mpc", show_default=True, help="Comma-separated: mpc, he.")
@click.option(
    "--price",
    type=AMOUNT,
    default=None,
    help="Least reward per seat this node accepts (a task offers reward / committee size) "
    "[first declaration: 0; later: unchanged].",
)
@click.option(
    "--capacity",
    type=click.IntRange(1, 16383),
    default=None,
    help="Most committee seats (tasks) this node holds at once; the contract enforces it "
    "[first declaration: 4; later: unchanged].",
)
@pass_ctx
def stake(c: Ctx, amount: int, capabilities: str, price: int | None, capacity: int | None) -> None:
    """Register this node (peer id derived from its key), declare its price and capacity, and
    add stake (each seat collateral's worth of stake is one sortition slot).

    \b
    Examples:
      dnode --home ~/n1 stake --amount 2ether
      dnode --home ~/n1 stake --amount 0 --capabilities mpc,he --price 0.01ether --capacity 8
    """
    caps = 0
    for name in filter(None, (s.strip() for s in capabilities.split(","))):
        if name not in CAPS:
            raise CliError(f"unknown capability {name!r} (mpc, he)")
        caps |= CAPS[name]
    acct = c.account()
    chain = c.chain(acct)
    peer_id = peer_id_from_seed(keystore.identity_seed(acct))
    info = chain.node_info(acct.address)
    if info.peer_id != peer_id or info.capabilities != caps:
        chain.register(peer_id, caps)
    terms = chain.node_terms(acct.address)
    want_price = price if price is not None else (terms.price if terms.declared else 0)
    want_capacity = capacity if capacity is not None else (terms.capacity if terms.declared else 4)
    if (terms.price, terms.capacity, terms.declared) != (want_price, want_capacity, True):
        chain.set_terms(want_price, want_capacity)
    price, capacity = want_price, want_capacity
    if amount:
        chain.stake(amount)
    info = chain.node_info(acct.address)
    slots = chain.slots_owned(acct.address)
    owed = info.stake // int(chain.params()["seat_collateral"])
    while slots < owed:  # stake() appends at most 64 slots per call
        chain.sync_slots(acct.address)
        slots = chain.slots_owned(acct.address)
    c.emit(
        {
            "address": acct.address,
            "peer_id": peer_id,
            "stake": info.stake,
            "locked": info.locked,
            "capabilities": caps,
            "price": price,
            "capacity": capacity,
            "slots": slots,
        },
        f"node {acct.address}\npeer id {peer_id}\nstake {fmt_eth(info.stake)} "
        f"(locked {fmt_eth(info.locked)}, {slots} sortition slots)\n"
        f"price {fmt_eth(price)} per seat, capacity {capacity} seats",
    )


@click.command("unbond")
@click.option("--amount", type=AMOUNT, required=True)
@pass_ctx
def unbond(c: Ctx, amount: int) -> None:
    """Start unbonding free stake; it can be withdrawn after the unbonding delay.

    \b
    Examples:
      dnode --home ~/n1 unbond --amount 1ether
    """
    acct = c.account()
    chain = c.chain(acct)
    chain.unbond(amount)
    info = chain.node_info(acct.address)
    c.emit(
        {"unbonding": info.unbonding, "unbond_at": info.unbond_at},
        f"unbonding {fmt_eth(info.unbonding)}, withdrawable after timestamp {info.unbond_at}",
    )


@click.command("withdraw")
@pass_ctx
def withdraw(c: Ctx) -> None:
    """Withdraw rewards, refunds and matured unbonded stake to this account.

    \b
    Examples:
      dnode --home ~/n1 withdraw
      dnode --json --home ~/req withdraw
    """
    acct = c.account()
    chain = c.chain(acct)
    info = chain.node_info(acct.address)
    if info.unbonding and info.unbond_at <= chain.block_timestamp():
        chain.withdraw_unbonded()
    amount = chain.credits(acct.address)
    if amount == 0:
        raise CliError(f"nothing to withdraw for {acct.address}")
    chain.withdraw()
    c.emit({"address": acct.address, "withdrawn": amount}, f"withdrew {fmt_eth(amount)}")


@click.command("balance")
@click.argument("address", required=False)
@pass_ctx
def balance(c: Ctx, address: str | None) -> None:
    """Show an account's ETH balance, stake and credits in the protocol.

    \b
    Examples:
      dnode balance                  # the first account in HOME/keystore
      dnode balance 0x70997970C51812dc3A010C7d01b50e0d17dc79C8
      dnode --json --home ~/n1 balance
    """
    chain = c.chain()
    if address is None:
        address = (
            keystore.list_accounts(c.keystore_dir)[0][0]
            if keystore.list_accounts(c.keystore_dir)
            else None
        )
    if address is None:
        raise CliError("give an address or create an account")
    info = chain.node_info(address)
    eth = c.w3().eth.get_balance(to_checksum_address(address))
    credits = chain.credits(address)
    c.emit(
        {
            "address": address,
            "balance": eth,
            "stake": info.stake,
            "locked": info.locked,
            "unbonding": info.unbonding,
            "credits": credits,
        },
        f"{address}\nbalance {fmt_eth(eth)}\nstake {fmt_eth(info.stake)} (locked "
        f"{fmt_eth(info.locked)}, unbonding {fmt_eth(info.unbonding)})\ncredits {fmt_eth(credits)}",
    )


COMMANDS = [account, stake, unbond, withdraw, balance]

"""``dnode chain`` (embedded devnet) and ``dnode deploy`` (compile, deploy, manifest)."""

from __future__ import annotations

import json
from urllib.parse import urlparse

import click

from dnode.cli.context import CliError, Ctx, pass_ctx
from dnode.cli.units import AMOUNT, fmt_eth
from dnode.contracts.deploy import deploy as deploy_contracts

DAY = 86_400


@click.command("chain")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8545, show_default=True)
@click.option("--accounts", default=10, show_default=True, help="Pre-funded dev accounts.")
@click.option("--chain-id", default=1337, show_default=True)
@click.option(
    "--block-time",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Also mine an empty block every so many seconds (0: only on transactions), so "
    "events reach the nodes' confirmation depth without traffic.",
)
@click.option(
    "--max-ahead",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds the chain's clock may run ahead of the wall clock: beyond that, "
    "transactions wait (at most a second) and share a block, so deadlines in chain time "
    "do not expire early under load.",
)
@pass_ctx
def chain(
    c: Ctx, host: str, port: int, accounts: int, chain_id: int, block_time: float,
    max_ahead: float,
) -> None:  # fmt: skip
    """Run an embedded EVM dev chain (py-evm) behind JSON-RPC, mining every transaction.

    \b
    Examples:
      dnode chain                    # devnet on 127.0.0.1:8545, prints DEV-ONLY keys
      dnode chain --port 8546 --block-time 0 --chain-id 31337
      dnode --json chain --accounts 20
    """
    from dnode.contracts import devnet

    net = devnet.Devnet(accounts=accounts, chain_id=chain_id, max_ahead=max_ahead)
    rows = net.dev_accounts()
    if c.as_json:
        click.echo(
            json.dumps(
                {
                    "rpc_url": f"http://{host}:{port}",
                    "chain_id": chain_id,
                    "accounts": [{"address": a, "private_key": k} for a, k, _ in rows],
                }
            )
        )
    else:
        click.echo(f"dnode devnet: chain id {chain_id}, JSON-RPC on http://{host}:{port}")
        click.echo("DEV ONLY: these keys are public; never use them on a real network.")
        for i, (addr, key, bal) in enumerate(rows):
            click.echo(f"  ({i}) {addr}  {key}  {fmt_eth(bal)}")
    net.run_miner(empty_every=block_time)  # never an empty block that runs ahead of the clock
    try:
        devnet.serve(host=host, port=port, devnet=net)
    except OSError as e:
        raise CliError(f"cannot listen on {host}:{port}: {e.strerror}") from None


@click.command("deploy")
@click.option("--min-stake", type=AMOUNT, default="1ether", show_default=True)
@click.option("--seat-collateral", type=AMOUNT, default="0.1ether", show_default=True)
@click.option("--unbond-delay", default=7 * DAY, show_default=True, help="Seconds.")
@click.option("--challenge-period", default=3600, show_default=True, help="Seconds.")
@click.option(
    "--dispute-bond",
    type=AMOUNT,
    default=None,
    help="Base dispute bond; a dispute posts max(bond, reward) [= seat collateral].",
)
@click.option(
    "--dispute-period",
    type=int,
    default=None,
    help="Seconds a re-execution has; its committee must form in the first quarter, which "
    "must be >= 190 s [max(4 x challenge period, 760)].",
)
@click.option(
    "--dev-account",
    type=int,
    default=None,
    help="Deploy from the embedded devnet's dev account N instead of a keystore.",
)
@pass_ctx
def deploy(
    c: Ctx,
    min_stake: int,
    seat_collateral: int,
    unbond_delay: int,
    challenge_period: int,
    dispute_bond: int | None,
    dispute_period: int | None,
    dev_account: int | None,
) -> None:
    """Compile the Vyper contracts from source, deploy them, write the manifest.

    \b
    Examples:
      dnode deploy --dev-account 0 --challenge-period 60   # on `dnode chain`
      dnode --rpc-url http://127.0.0.1:8545 --account 0xA.. deploy --min-stake 2ether \\
          --seat-collateral 0.2ether
    """
    if seat_collateral > min_stake:
        raise CliError("--seat-collateral cannot exceed --min-stake")
    w3 = c.w3()
    if dev_account is not None:
        from eth_account import Account

        from dnode.contracts import devnet

        keys = devnet.dev_keys(dev_account + 1)
        acct = Account.from_key(keys[dev_account])
    else:
        acct = c.account()
    dep = deploy_contracts(
        w3,
        acct,
        min_stake=min_stake,
        seat_collateral=seat_collateral,
        unbond_delay=unbond_delay,
        challenge_period=challenge_period,
        dispute_bond=dispute_bond,
        dispute_period=dispute_period,
    )
    u = urlparse(c.rpc_url)
    dep = type(dep)(**{**dep.__dict__, "rpc": f"{u.scheme}://{u.netloc}"})
    manifest = c.own_manifest
    dep.save(manifest)
    c.emit(
        {
            "address": dep.address,
            "chain_id": dep.chain_id,
            "deploy_block": dep.deploy_block,
            "manifest": str(manifest),
            "params": dep.params,
        },
        f"deployed dnode at {dep.address} on chain {dep.chain_id} (block {dep.deploy_block})\n"
        f"manifest {manifest}",
    )


COMMANDS = [chain, deploy]

"""Shared CLI state: where files live, how to reach the chain, how to unlock the account."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dnode.cli.sdk.errors import SdkError
from dnode.contracts.errors import ChainMismatch, ContractsError, RpcUnreachable

if TYPE_CHECKING:  # imported on use: `dnode --help` must not load web3, eth-account or rich
    from eth_account.signers.local import LocalAccount
    from rich.console import Console
    from web3 import Web3

    from dnode.cli.sdk.client import Client
    from dnode.contracts.client import ChainClient
    from dnode.contracts.manifest import Deployment
    from dnode.contracts.rpc import RetryPolicy

DEFAULT_RPC = "http://127.0.0.1:8545"


#: where `dnode deploy` and every command without --home keep their files
DEFAULT_HOME = Path.home() / ".dnode"


class CliError(click.ClickException, SdkError):
    """A user mistake the CLI reports in one line (exit code 1); an SdkError too, so the
    SDK's callers catch one root."""


@dataclass
class Ctx:
    home: Path
    rpc_urls: list[str]  # one chain; the first is used until it fails (failover)
    manifest_path: Path | None
    as_json: bool
    account_hint: str | None
    password_file: Path | None
    _w3: Web3 | None = None
    rpc_policy: RetryPolicy | None = None
    _console: Console | None = field(default=None, repr=False)

    @property
    def console(self) -> Console:
        """Status lines and spinners on stderr."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True)
        return self._console

    @property
    def rpc_url(self) -> str:
        return self.rpc_urls[0]

    @property
    def keystore_dir(self) -> Path:
        return self.home / "keystore"

    @property
    def own_manifest(self) -> Path:
        """Where this home's manifest is written (`dnode deploy`)."""
        return self.manifest_path or (self.home / "deployment.json")

    @property
    def manifest(self) -> Path:
        """--manifest, else this home's deployment.json, else the default home's (where
        `dnode deploy` writes it): a requester with its own --home finds the deployment."""
        if self.manifest_path is not None:
            return self.manifest_path
        own = self.home / "deployment.json"
        shared = DEFAULT_HOME / "deployment.json"
        return shared if not own.exists() and shared.exists() else own

    def w3(self) -> Web3:
        if self._w3 is None:
            from dnode.contracts.client import connect
            from dnode.contracts.rpc import ResilientHTTPProvider

            w3 = connect(self.rpc_urls, policy=self.rpc_policy)
            if len(self.rpc_urls) > 1:
                assert isinstance(w3.provider, ResilientHTTPProvider)
                w3.provider.check_chain_ids()  # every endpoint must serve the same chain
            try:
                w3.eth.chain_id  # noqa: B018 - probe the endpoint once, with a clear error
            except ContractsError:
                raise
            except Exception as e:  # requests/aiohttp/JSON errors all mean "unreachable" here
                raise RpcUnreachable(", ".join(self.rpc_urls), type(e).__name__) from None
            self._w3 = w3
        return self._w3

    def deployment(self) -> Deployment:
        from dnode.contracts.manifest import Deployment

        path = self.manifest
        if self.manifest_path is None and not path.exists():
            raise CliError(
                f"no deployment manifest in {self.home} or {DEFAULT_HOME}: run `dnode deploy` "
                "(it writes ~/.dnode/deployment.json) or pass --manifest FILE"
            )
        return Deployment.load(path)

    def password(self, prompt: str = "Keystore password", confirm: bool = False) -> str:
        if self.password_file is not None:
            try:
                return self.password_file.read_text().rstrip("\n")
            except OSError as e:
                raise CliError(
                    f"cannot read password file {self.password_file}: {e.strerror}"
                ) from None
        env = os.environ.get("DNODE_PASSWORD")
        if env is not None:
            return env
        if not os.isatty(0):
            raise CliError("no password: use --password-file, DNODE_PASSWORD, or a terminal")
        return str(click.prompt(prompt, hide_input=True, confirmation_prompt=confirm))

    def account(self) -> LocalAccount:
        from dnode.node import keystore

        path = keystore.find_keyfile(self.keystore_dir, self.account_hint)
        return keystore.load_account(path, self.password())

    def chain(self, account: LocalAccount | None = None) -> ChainClient:
        from dnode.contracts.client import ChainClient

        dep = self.deployment()
        w3 = self.w3()
        actual = w3.eth.chain_id
        if actual != dep.chain_id:
            raise ChainMismatch(dep.chain_id, actual)
        return ChainClient(w3, dep, account)

    def client(self, bootstrap: tuple[str, ...] | list[str] = ()) -> Client:
        """The SDK client the commands are a shell over: this home, manifest and account
        (the keystore is unlocked only when a command signs)."""
        from dnode.cli.sdk.client import Client

        # self.chain checks the manifest and the chain id (one-line errors), on first read
        return Client(None, None, home=self.home, account=self.account, bootstrap=bootstrap,
                      reader=self.chain)  # fmt: skip

    def emit(self, obj: dict[str, Any], human: str | None = None) -> None:
        """One result per command: JSON on stdout with --json, else a human line."""
        if self.as_json:
            click.echo(json.dumps(obj, indent=None, default=str))
        elif human is not None:
            from rich.console import Console

            Console().print(human, highlight=False)


pass_ctx = click.make_pass_decorator(Ctx)

"""The dnode client: connect to a deployment, post programs and SQL queries, follow and read
their results, publish datasets, run an owner agent, read attested results (a dApp backend).

The ``dnode`` command is a thin shell over this class (see ``Ctx.client`` in cli/context.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dnode.cli.sdk import catalog
from dnode.cli.sdk.errors import SdkError
from dnode.cli.sdk.run import run_trio, to_thread
from dnode.cli.sdk.tasks import Result, Task, min_aggregation, table_params
from dnode.contracts.client import ChainClient, TaskStatus
from dnode.contracts.errors import ChainMismatch, ContractsError, RpcUnreachable
from dnode.scheduler.programs import (
    MAX_COMMITTEE,
    MIN_COMMITTEE,
    Column,
    TaskParams,
    get_program,
    program_by_id,
)
from dnode.scheduler.programs.registry import MAX_RESULT_VALUES

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3

    from dnode.cli.sdk.agent import OwnerAgentHandle
    from dnode.cli.sdk.federated import FederatedRun
    from dnode.contracts.manifest import Deployment
    from dnode.oracle.reader import OracleResult

DEFAULT_RPC = "http://127.0.0.1:8545"
DEFAULT_HOME = Path.home() / ".dnode"

Amount = int | str  # wei, or "0.3ether", "2gwei"


def wei(amount: Amount) -> int:
    """An amount in wei: an int, or a string with a unit.

    >>> wei("0.3ether"), wei(5)
    (300000000000000000, 5)
    >>> wei("lots")
    Traceback (most recent call last):
    ...
    dnode.cli.sdk.errors.SdkError: 'lots' is not an amount (try 1.5ether, 2gwei, 1000wei)
    """
    if isinstance(amount, int) and not isinstance(amount, bool):
        if amount < 0:
            raise SdkError(f"amount {amount} is negative")
        return amount
    from dnode.contracts.units import parse_amount

    try:
        return parse_amount(str(amount))
    except ValueError as e:
        raise SdkError(str(e)) from None


def connect(
    rpc_url: str | Sequence[str] = DEFAULT_RPC,
    manifest: str | Path | None = None,
    *,
    home: str | Path | None = None,
    account: str | None = None,
    password: str | None = None,
    private_key: str | None = None,
    bootstrap: Sequence[str] = (),
) -> Client:
    """Connect to a dnode deployment over JSON-RPC.

    ``manifest`` is the deployment manifest (default: HOME/deployment.json, else
    ~/.dnode/deployment.json, as ``dnode deploy`` writes it). The account signing
    transactions is the keystore's in ``home`` (``account`` picks one by address; the
    password is ``password`` or $DNODE_PASSWORD), or ``private_key`` (dev chains). Without
    either the client reads only (a dApp backend). ``bootstrap``: libp2p multiaddrs of nodes
    to announce tasks and fetch private results through.

    Example (a devnet from ``dnode chain``, a requester's keystore under ~/req)::

        import dnode

        client = dnode.connect("http://127.0.0.1:8545", home="~/req", password="...")
    """
    from dnode.contracts.client import connect as w3_connect
    from dnode.contracts.manifest import Deployment
    from dnode.contracts.rpc import ResilientHTTPProvider

    urls = [rpc_url] if isinstance(rpc_url, str) else list(rpc_url)
    home_dir = Path(home).expanduser() if home is not None else DEFAULT_HOME
    path = Path(manifest).expanduser() if manifest is not None else None
    if path is None:
        own, shared = home_dir / "deployment.json", DEFAULT_HOME / "deployment.json"
        path = shared if not own.exists() and shared.exists() else own
        if not path.exists():
            raise SdkError(
                f"no deployment manifest in {home_dir} or {DEFAULT_HOME}: run `dnode deploy` "
                "(it writes ~/.dnode/deployment.json) or pass manifest=FILE"
            )
    dep = Deployment.load(path)
    w3 = w3_connect(urls)
    if len(urls) > 1:
        assert isinstance(w3.provider, ResilientHTTPProvider)
        w3.provider.check_chain_ids()
    try:
        actual = w3.eth.chain_id
    except ContractsError:
        raise
    except Exception as e:  # requests/JSON errors all mean "unreachable" here
        raise RpcUnreachable(", ".join(urls), type(e).__name__) from None
    if actual != dep.chain_id:
        raise ChainMismatch(dep.chain_id, actual)
    loader: Callable[[], LocalAccount] | None = None
    if private_key is not None:
        from eth_account import Account

        key = private_key

        def loader() -> LocalAccount:
            return Account.from_key(key)

    elif (home_dir / "keystore").is_dir():

        def loader() -> LocalAccount:
            from dnode.node import keystore

            pw = password if password is not None else os.environ.get("DNODE_PASSWORD")
            if pw is None:
                raise SdkError("no keystore password: pass password= or set DNODE_PASSWORD")
            return keystore.load_account(keystore.find_keyfile(home_dir / "keystore", account), pw)

    return Client(w3, dep, home=home_dir, account=loader, bootstrap=bootstrap)


class Client:
    """One user of a dnode deployment (see :func:`connect`).

    Reads need no account; posting, publishing and running an owner agent sign with the
    account the client was connected with. Every method that waits has an ``async`` twin
    (``*_async``) that runs it in a worker thread, so a notebook's event loop never blocks.
    """

    def __init__(
        self,
        w3: Web3 | None,
        deployment: Deployment | None,
        *,
        home: Path = DEFAULT_HOME,
        account: Callable[[], LocalAccount] | None = None,
        bootstrap: Sequence[str] = (),
        reader: Callable[[], ChainClient] | None = None,
    ) -> None:
        """``w3`` and ``deployment``, or ``reader``: a factory of the read-only chain client,
        called on the first read (the CLI's commands that need no chain never connect)."""
        self.home = Path(home)
        self.bootstrap = list(bootstrap)
        self._load_account = account
        self._account: LocalAccount | None = None
        self._signer: ChainClient | None = None
        self._chain: ChainClient | None = None
        if w3 is not None and deployment is not None:
            self._chain = ChainClient(w3, deployment)
        elif reader is None:
            raise SdkError("a Client needs w3 and deployment, or reader")
        self._reader = reader

    @property
    def chain(self) -> ChainClient:
        """The read-only chain client (no account)."""
        if self._chain is None:
            assert self._reader is not None
            self._chain = self._reader()
        return self._chain

    @property
    def w3(self) -> Web3:
        return self.chain.w3

    @property
    def deployment(self) -> Deployment:
        return self.chain.deployment

    def __repr__(self) -> str:
        return f"<dnode.Client {self.deployment.address} chain {self.deployment.chain_id}>"

    # ---- account ----------------------------------------------------------------------------

    @property
    def account(self) -> LocalAccount:
        """The signing account (loaded from the keystore on first use)."""
        if self._account is None:
            if self._load_account is None:
                raise SdkError(
                    "this client has no account: connect with home= (a keystore) or private_key="
                )
            self._account = self._load_account()
        return self._account

    @property
    def address(self) -> str:
        return str(self.account.address)

    @property
    def signer(self) -> ChainClient:
        """A chain client that signs with :attr:`account`."""
        if self._signer is None:
            self._signer = ChainClient(self.w3, self.deployment, self.account)
        return self._signer

    def _boot(self, bootstrap: Sequence[str] | None) -> list[str]:
        return list(bootstrap) if bootstrap is not None else self.bootstrap

    # ---- programs and params ----------------------------------------------------------------

    def programs(self) -> list[dict[str, Any]]:
        """Every program a task can run, with its arguments and what it reveals.

        Needs no chain: also ``dnode.cli.sdk.programs()``."""
        return programs()

    def params_path(self, task_id: int) -> Path:
        """Where a requester keeps the params of a task it posted (to label its result)."""
        return self.home / "params" / f"{self.deployment.address.lower()}-{task_id}.json"

    def keep_params(self, task_id: int, params: TaskParams) -> Path:
        path = self.params_path(task_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(params.canonical())
        except OSError:
            pass
        return path

    def known_params(self, task_id: int, given: Path | None = None) -> TaskParams | None:
        """The params kept for ``task_id`` (or read from ``given``); None when unknown."""
        path = given or self.params_path(task_id)
        try:
            return TaskParams.from_bytes(path.read_bytes())
        except OSError:
            if given is not None:
                raise SdkError(f"cannot read --params {given}") from None
            return None

    def result_key(self) -> str:
        """The public key private results are sealed to (derived from the account's key)."""
        from dnode.node.mpc.delivery import result_keypair

        return result_keypair(bytes(self.account.key))[1]

    def table_params(
        self,
        program: str,
        owners: Sequence[str],
        *,
        columns: Sequence[str | Column] = (),
        schema: str | Path | None = None,
        args: Mapping[str, Any] | None = None,
        input_timeout: int = 120,
        max_rows: int = 1 << 16,
        min_owners: int | None = None,
        min_values: int | None = None,
        allow_single_owner: bool = False,
        private_result: bool = False,
    ) -> TaskParams:
        """The params of a table program, without posting (what a consumer contract posts)."""
        spec = get_program(program)
        minimum = min_aggregation(owners, min_owners, min_values, allow_single_owner)
        return table_params(
            spec, owners, columns, schema, dict(args or {}), input_timeout, max_rows,
            minimum.to_extra(), self.result_key() if private_result else "",
        )  # fmt: skip

    # ---- posting ------------------------------------------------------------------------------

    def post(
        self,
        program: str,
        *,
        owners: Sequence[str] = (),
        datasets: Sequence[int] = (),
        privacy_cost: str | float | Sequence[str | float] = (),
        columns: Sequence[str | Column] = (),
        schema: str | Path | None = None,
        args: Mapping[str, Any] | None = None,
        reward: Amount = "0.3ether",
        committee: int = 3,
        seat_timeout: int = 120,
        report_timeout: int = 600,
        input_timeout: int = 120,
        max_rows: int = 1 << 16,
        min_owners: int | None = None,
        min_values: int | None = None,
        allow_single_owner: bool = False,
        private_result: bool = False,
        bootstrap: Sequence[str] | None = None,
        data: str | Path | Mapping[str, str | Path] | None = None,
        scheme: str = "ckks",
    ) -> Task:
        """Escrow ``reward`` and post a table program over the owners' (or the published
        datasets') tables; announce its params to the network through ``bootstrap``.

        HE programs (``he.*``) run on the requester's own data instead: ``data`` is the file
        to encrypt locally (CSV or .npy; ``{"x": FILE, "y": FILE}`` for two inputs), under a
        ``scheme`` (``ckks`` or ``bfv``) key kept in HOME/he-keys; the public context and
        ciphertexts are pushed to the committee once it forms (this call waits for it).

        ``args`` are the program's own arguments (see :meth:`programs`), e.g.
        ``{"q": "0.25,0.5"}`` for ``mpc.quantiles``; ``columns`` name the columns it reads
        (``"age:int:0:120"``, ``"income:fixed:2:0:200000"``; ranges are public).

        Example (against a running devnet: a requester, two owners)::

            task = client.post("mpc.mean", owners=[alice, bob], columns=["age:int:0:120"])
            print(task.result(wait=300).value)
        """
        spec = get_program(program)
        check_sizes(committee, seat_timeout, report_timeout)
        if not spec.uses_table:  # the requester's own encrypted data (HE)
            if owners or datasets or columns or schema:
                raise SdkError(f"{spec.name} takes no owners/columns: it encrypts data=FILE")
            if private_result:
                raise SdkError(f"{spec.name}'s results are already encrypted to your own key")
            if data is None:
                raise SdkError(f"{spec.name} needs data=FILE (the input to encrypt)")
            from dnode.cli.sdk.he import post_he

            files = dict(data) if isinstance(data, Mapping) else {"x": data}
            out = post_he(
                self.home, self.signer, spec, files, dict(args or {}), committee_size=committee,
                reward=wei(reward), seat_timeout=seat_timeout, report_timeout=report_timeout,
                input_timeout=input_timeout, bootstrap=self._boot(bootstrap), scheme=scheme,
            )  # fmt: skip
            task = Task(self, int(out["task_id"]), out["params"])
            task.announced_to = int(out["announced_to"])
            return task
        if data is not None:
            raise SdkError(f"data= is for programs on encrypted data, not {spec.name}")
        costs_in = [privacy_cost] if isinstance(privacy_cost, str | int | float) else list(
            privacy_cost)  # fmt: skip
        chain = self.signer
        costs: list[int] = []
        derived = catalog.asks_dp(dict(args or {}))  # DP: the cost is the noise's, composed
        if datasets:
            if owners:
                raise SdkError("give --dataset or --owner, not both: a dataset's owner contributes")
            owners, costs = catalog.dataset_owners(chain, datasets, costs_in, derived=derived)
        elif costs_in:
            raise SdkError("--privacy-cost needs --dataset")
        params = self.table_params(
            spec.name, owners, columns=columns, schema=schema, args=args,
            input_timeout=input_timeout, max_rows=max_rows, min_owners=min_owners,
            min_values=min_values, allow_single_owner=allow_single_owner,
            private_result=private_result,
        )  # fmt: skip
        if datasets and derived:  # the composed cost of the noisy outputs, per dataset budget
            costs = catalog.dp_costs(chain, datasets, params)
        return self.post_params(
            params, reward=reward, committee=committee, seat_timeout=seat_timeout,
            report_timeout=report_timeout, datasets=datasets, costs=costs, bootstrap=bootstrap,
        )  # fmt: skip

    def post_params(
        self,
        params: TaskParams,
        *,
        reward: Amount,
        committee: int = 3,
        seat_timeout: int = 120,
        report_timeout: int = 600,
        datasets: Sequence[int] = (),
        costs: Sequence[int] = (),
        bootstrap: Sequence[str] | None = None,
    ) -> Task:
        """Post a task with ready params (escrowing the reward and the datasets' prices),
        keep the params to label the result, and announce them."""
        check_sizes(committee, seat_timeout, report_timeout)
        spec, chain, amount = params.spec, self.signer, wei(reward)
        now = max(int(time.time()), chain.block_timestamp())
        if datasets:
            task_id = chain.post_data_task(
                spec.program_id, params.digest, datasets=list(datasets), costs=list(costs),
                reward=amount, seat_deadline=now + seat_timeout,
                compute_window=report_timeout - seat_timeout, capability=spec.capability_bit,
                committee_size=committee,
            )  # fmt: skip
        else:
            task_id = chain.post_task(
                spec.program_id, params.digest, capability=spec.capability_bit,
                committee_size=committee, seat_deadline=now + seat_timeout,
                report_deadline=now + report_timeout, reward=amount,
            )  # fmt: skip
        kept = self.keep_params(task_id, params)
        task = Task(self, task_id, params)
        task.privacy_costs = list(costs)
        boot = self._boot(bootstrap)
        if boot:
            from dnode.node.errors import NodeError

            try:
                task.announced_to = self.announce(task_id, params, boot)
            except NodeError as e:  # posted and paid: say which task and how to announce it
                raise SdkError(
                    f"task {task_id} is posted but its params were not announced ({e}); retry "
                    f"with `dnode task announce {task_id} --params {kept} --bootstrap ADDR`"
                ) from None
        return task

    def announce(
        self, task_id: int, params: TaskParams, bootstrap: Sequence[str] | None = None
    ) -> int:
        """Announce a posted task's params to the nodes; returns how many peers took them."""
        from dnode.node import peer_client

        boot = self._boot(bootstrap)
        if not boot:
            raise SdkError("announcing needs bootstrap= (a node's multiaddr)")
        return int(run_trio(peer_client.announce, boot, task_id, params))

    def task(self, task_id: int) -> Task:
        """A handle on any task (its params when this home posted it)."""
        t = Task(self, task_id, self.known_params(task_id))
        t.info()  # exists?
        return t

    # ---- data owners: contributing by hand ----------------------------------------------------

    def contribute(
        self,
        task_id: int,
        inputs: str | Path,
        *,
        bootstrap: Sequence[str] | None = None,
        timeout: float = 300.0,
        round: int | None = None,
        params_file: str | Path | None = None,
        on_status: Callable[[TaskStatus, str], None] | None = None,
    ) -> dict[str, Any]:
        """As a data owner: secret-share the table in ``inputs`` (CSV with the task's columns)
        locally and send each seat of the committee only its share; returns the task, round,
        owner, row count and the seats reached. (An owner agent does this on its own: see
        :meth:`owner_agent`.) ``round`` 1 is a disputed task's re-execution committee
        (default: 1 if the task is disputed, else 0)."""
        from dnode.node import peer_client
        from dnode.scheduler.committee_check import verified_committee

        acct, chain = self.account, self.signer
        info = chain.task_info(task_id)
        if info.status == TaskStatus.NONE:
            raise SdkError(f"task {task_id} does not exist")
        rnd = round
        if rnd is None:
            rnd = 1 if info.status in (TaskStatus.DISPUTED, TaskStatus.RECOMPUTING) else 0
        forming = TaskStatus.RECOMPUTING if rnd else TaskStatus.COMPUTING
        committee = "re-execution committee" if rnd else "committee"
        given = Path(params_file) if params_file is not None else None
        local = self.known_params(task_id, given)
        if local is not None and local.digest != info.params_digest:
            if given is not None:
                raise SdkError(f"--params {given} are not the params of task {task_id}")
            local = None  # a stale local copy: ask the peers
        path = Path(inputs)

        def encode(params: TaskParams) -> list[int]:
            if not params.is_owner(acct.address):
                raise SdkError(f"{acct.address} is not a data owner of task {task_id}")
            # encode once, before waiting: a malformed file fails now, not after the committee
            return list(params.encode_table(path, acct.address))

        early = encode(local) if local is not None else None  # offline: before connecting
        rows = 0
        boot = self._boot(bootstrap)
        if not boot:
            raise SdkError("contributing needs bootstrap= (a node's multiaddr)")

        def wait() -> TaskStatus:
            from dnode.cli.sdk.tasks import wait_for

            seen = (lambda st: on_status(st, committee)) if on_status else None
            return wait_for(chain, task_id, {forming}, timeout, f"waiting for the {committee}",
                            seen)  # fmt: skip

        async def flow() -> list[str]:
            import trio

            nonlocal rows
            # one libp2p host for the whole contribution: fetch the params, wait, deliver
            async with peer_client.ephemeral_host(boot) as host:
                if local is not None and early is not None:
                    params, encoded = local, early
                else:
                    params = await peer_client.fetch_params(host, task_id, info.params_digest)
                    encoded = encode(params)
                rows = len(encoded) // max(params.spec.width(params), 1)
                st = await trio.to_thread.run_sync(wait)
                if st != forming:
                    raise SdkError(
                        f"task {task_id} is {st.name.lower()}: the {committee} accepts no inputs"
                    )
                # refuse (one line) a committee the ranked sortition does not allow
                await trio.to_thread.run_sync(
                    verified_committee, chain, task_id, rnd, params.owners, timeout
                )
                return list(await peer_client.contribute_to_committee(
                    host, chain, acct, task_id, params, encoded, rnd
                ))  # fmt: skip

        peers = run_trio(flow)
        return {"task_id": task_id, "round": rnd, "owner": acct.address, "rows": rows,
                "values": rows, "seats": peers}  # fmt: skip

    def watch(
        self,
        *,
        from_block: int | None = None,
        poll: float = 1.0,
        timeout: float | None = 600.0,
        limit: int | None = None,
    ) -> Iterator[OracleResult]:
        """Each task's attested result as it becomes final (a dApp backend's feed), from
        ``from_block`` (default: the next block), until ``limit`` results or ``timeout``."""
        from dnode.oracle.reader import watch

        if from_block is not None and from_block > self.chain.latest_block():
            raise SdkError(f"--from-block {from_block} is past the chain head")
        return watch(self.chain, from_block=from_block, poll=poll, timeout=timeout, limit=limit)

    # ---- SQL ------------------------------------------------------------------------------

    def compile_query(
        self,
        sql: str,
        schemas: Sequence[str | Path],
        *,
        owners: Sequence[str] = (),
        tables: Sequence[str] = (),
        datasets: Sequence[int] = (),
        privacy_cost: str | float | Sequence[str | float] = (),
        reward: Amount = "0.3ether",
        committee: int = 3,
        input_timeout: int = 120,
        max_rows: int = 1 << 16,
        allow_single_owner: bool = False,
        private_result: bool = False,
        epsilon: str | float | None = None,
        rho: str | float | None = None,
        delta: str | float | None = None,
        dp_bins: int | None = None,
    ) -> tuple[TaskParams, dict[str, Any], list[int]]:
        """Compile ``sql`` into task params; returns (params, explanation, privacy costs).
        ``epsilon`` (or ``rho``, zCDP) asks for a differentially private answer: noise the
        committee adds in MPC, calibrated by OpenDP; over datasets its composed cost is what
        the task charges each budget (``privacy_cost`` is then derived, not given);
        ``dp_bins``: bins of the noisy histogram a DP MIN/MAX/quantile is read from."""
        from dnode.scheduler.programs.query.build import explain, query_params
        from dnode.scheduler.programs.query.plan import compile_query

        if not schemas:
            raise SdkError("give each table's public schema with --schema FILE")
        costs_in = [privacy_cost] if isinstance(privacy_cost, str | int | float) else list(
            privacy_cost)  # fmt: skip
        by_digest = catalog.schemas_by_digest(schemas)
        tables_of: dict[str, tuple[Column, ...]] = {}
        for name, cols in by_digest.values():
            if name in tables_of:
                raise SdkError(f"table {name!r} has two --schema files")
            tables_of[name] = cols
        if datasets and owners:
            raise SdkError("give --dataset or --owner, not both: a dataset's owner contributes")
        if costs_in and not datasets:
            raise SdkError("--privacy-cost needs --dataset")
        by_table = owners_by_table(tables_of, owners, tables)
        dp = {k: None if v is None else str(v) for k, v in
              (("epsilon", epsilon), ("rho", rho), ("delta", delta))}  # fmt: skip
        derived = catalog.asks_dp(dp)
        dp["dp_bins"] = None if dp_bins is None else str(dp_bins)
        costs: list[int] = []
        prices: dict[int, int] = {}
        if datasets:
            ds_owners, costs = catalog.dataset_owners(
                self.chain, datasets, costs_in, derived=derived
            )
            for ds, o in zip(datasets, ds_owners, strict=True):
                info = self.chain.dataset_info(ds)
                t = catalog.schema_of(info, ds, by_digest)[0]
                by_table.setdefault(t, []).append(_checksum(o))
                prices[ds] = info.price
        key = self.result_key() if private_result else ""
        used = compile_query(sql, tables_of).tables  # the owners of the tables the query reads
        everyone = tuple(dict.fromkeys(o for t in used for o in by_table.get(t, ())))
        minimum = min_aggregation(everyone, None, None, allow_single_owner)
        plan, params = query_params(
            sql, tables_of, by_table, max_rows=max_rows, input_timeout=input_timeout,
            extra=minimum.to_extra(), result_key=key, dp=dp,
        )  # fmt: skip
        if datasets and derived:  # the composed cost of the noisy answer, per dataset budget
            costs = catalog.dp_costs(self.chain, datasets, params)
        e = explain(params, plan, by_table, reward=wei(reward), prices=prices, committee=committee)
        return params, e, costs

    def explain(self, sql: str, schemas: Sequence[str | Path], **kw: Any) -> dict[str, Any]:
        """What a query reveals, to whom, and what it costs; posts nothing."""
        return self.compile_query(sql, schemas, **kw)[1]

    def query(
        self,
        sql: str,
        schemas: Sequence[str | Path],
        *,
        owners: Sequence[str] = (),
        tables: Sequence[str] = (),
        datasets: Sequence[int] = (),
        privacy_cost: str | float | Sequence[str | float] = (),
        reward: Amount = "0.3ether",
        committee: int = 3,
        seat_timeout: int = 120,
        report_timeout: int = 600,
        input_timeout: int = 120,
        max_rows: int = 1 << 16,
        allow_single_owner: bool = False,
        private_result: bool = False,
        bootstrap: Sequence[str] | None = None,
        epsilon: str | float | None = None,
        rho: str | float | None = None,
        delta: str | float | None = None,
        dp_bins: int | None = None,
    ) -> Task:
        """Post a SQL aggregate over owners' (or published datasets') tables as one MPC task
        (``epsilon``/``rho``/``delta``: a differentially private answer, see
        :meth:`compile_query`).

        ``schemas`` are the tables' public schema files (``{"table": NAME, "columns": [...]}``).
        A table held by several owners is their UNION ALL.

        Example::

            sql = "SELECT AVG(age) FROM patients"
            task = client.query(sql, ["patients.json"], datasets=[1, 2], privacy_cost=0.1)
            task.result(wait=300).named  # {'AVG(age)': 47.2}
        """
        check_sizes(committee, seat_timeout, report_timeout)
        params, _, costs = self.compile_query(
            sql, schemas, owners=owners, tables=tables, datasets=datasets,
            privacy_cost=privacy_cost, reward=reward, committee=committee,
            input_timeout=input_timeout, max_rows=max_rows,
            allow_single_owner=allow_single_owner, private_result=private_result,
            epsilon=epsilon, rho=rho, delta=delta, dp_bins=dp_bins,
        )  # fmt: skip
        return self.post_params(
            params, reward=reward, committee=committee, seat_timeout=seat_timeout,
            report_timeout=report_timeout, datasets=datasets, costs=costs, bootstrap=bootstrap,
        )  # fmt: skip

    # ---- federated ML: chains of step tasks (cli/sdk/federated.py) ------------------------

    def kmeans(
        self,
        *,
        owners: Sequence[str],
        columns: Sequence[str | Column] = (),
        schema: str | Path | None = None,
        k: int,
        init: Sequence[str | int] | None = None,
        seed: int = 0,
        iterations: int = 10,
        tol: str | int = 0,
        **post: Any,
    ) -> FederatedRun:
        """Federated k-means (Lloyd): ``iterations`` tasks of ``ml.kmeans_step``, each from the
        previous task's centroids (``init``: k rows of the columns, row-major; else public
        draws from the declared ranges by ``seed``, as ``ml.kmeans --seed``); stops early once
        no centroid moves more than ``tol``. The owners compute their per-cluster sums in
        plaintext each step (their agents contribute on their own): every step's centroids are
        in the next task's params (docs/protocol.md "Federated ML").  ``post``: the keywords
        of :meth:`table_params` / :meth:`post_params` (reward, committee, max_rows, ...).

        Example::

            run = client.kmeans(
                owners=[a, b, c],
                columns=["x:fixed:2:-100:100", "y:fixed:2:-100:100"],
                k=3,
                init=["-40", "-40", "40", "40", "40", "-40"],
                iterations=10,
                reward="0.1ether",
            )
            run.result.rows  # the centroids and sizes of the last step
        """
        from dnode.cli.sdk.federated import kmeans_next, run_chain
        from dnode.cli.sdk.tasks import columns_of
        from dnode.scheduler.programs.ml.kmeans_step import KMeansStep

        if init:
            cents = [str(v) for v in init]
        else:  # the draws of ml.kmeans --seed (decimal strings: exact, powers-of-10 scales)
            draws = KMeansStep.initial(columns_of(columns, schema), k, seed)
            cents = [format(Decimal(v.numerator) / Decimal(v.denominator), "f")
                     for row in draws for v in row]  # fmt: skip
        if len(cents) % max(1, k):
            raise SdkError(f"ml.kmeans_step: init needs k rows of the columns, got {len(cents)}")
        return run_chain(
            self, "ml.kmeans_step", kmeans_next, owners=owners, columns=columns, schema=schema,
            args={"centroids": cents}, iterations=iterations, tol=Fraction(str(tol)), **post,
        )  # fmt: skip

    def logreg(
        self,
        *,
        owners: Sequence[str],
        columns: Sequence[str | Column] = (),
        schema: str | Path | None = None,
        c: str | int = 1,
        iterations: int = 8,
        tol: str | int = 0,
        weights: Sequence[str | int] | None = None,
        **post: Any,
    ) -> FederatedRun:
        """Federated logistic regression (the last column is the 0/1 label): ``iterations``
        Newton steps, each one ``ml.logreg_step`` task from the previous task's weights
        (``weights``: a starting model, default 0), scikit-learn's ``LogisticRegression(C=c)``
        objective on standardised features; stops early once no weight moves more than
        ``tol``. More than 15 features: each step's result is private (sealed to this
        account; the next task's params then carry it).  ``post``: as :meth:`kmeans`."""
        from dnode.cli.sdk.federated import logreg_next, run_chain
        from dnode.cli.sdk.tasks import columns_of

        args: dict[str, Any] = {"c": str(c)}
        if weights:
            args["weights"] = [str(v) for v in weights]
        cols = columns_of(columns, schema)
        post.setdefault("private_result", len(cols) > MAX_RESULT_VALUES)
        return run_chain(
            self, "ml.logreg_step", logreg_next, owners=owners, columns=columns, schema=schema,
            args=args, iterations=iterations, tol=Fraction(str(tol)), **post,
        )  # fmt: skip

    # ---- results --------------------------------------------------------------------------

    def read(self, task_id: int, params: TaskParams | None = None) -> OracleResult:
        """The attested result as a dApp backend reads it: from the contract, checked against
        its on-chain digest, decoded by the program's codec (no account needed)."""
        from dnode.oracle.reader import read

        return read(self.chain, task_id, params)

    def result(
        self,
        task_id: int,
        params: TaskParams | None = None,
        bootstrap: Sequence[str] | None = None,
    ) -> Result:
        """A task's result, decoded (labelled when the params are known). A private result
        sealed to this account is fetched from the committee and opened locally."""
        from dnode.oracle.codecs import TensorResult

        params = params or self.known_params(task_id)
        info = self.chain.task_info(task_id)
        if info.status == TaskStatus.NONE:
            raise SdkError(f"task {task_id} does not exist")
        posted = program_by_id(info.program_id)
        if posted is not None and posted.codec == "private":  # HE: decrypt with the kept key
            return self._result_he(task_id, bootstrap)
        if params is not None and params.result_key:
            from dnode.cli.sdk.private import result_private

            got = result_private(self.account, self.home, self.chain, task_id, params,
                                 tuple(self._boot(bootstrap)))  # fmt: skip
            st = got["status"]
            return Result.from_decoded(
                task_id, params.program, st.name.lower(), got["decoded"], got["bundle_digest"],
                st == TaskStatus.FINALIZED, private=True, fetched_from=got["fetched_from"],
            )  # fmt: skip
        r = self.read(task_id, params)
        if r.value is None or not isinstance(r.decoded, TensorResult):
            raise SdkError(f"task {task_id}: the result is not a public value")
        return Result.from_decoded(task_id, r.program, r.status.name.lower(), r.decoded,
                                   "0x" + r.digest.hex(), r.final)  # fmt: skip

    def _result_he(self, task_id: int, bootstrap: Sequence[str] | None) -> Result:
        from decimal import Decimal

        from dnode.cli.sdk.he import result_he

        r = result_he(self.home, self.chain, task_id, self._boot(bootstrap))
        arr = r["array"]
        flat = [float(x) for x in arr.reshape(-1)]
        names = [f"value{i}" for i in range(len(flat))]
        return Result(
            task_id=task_id, program=r["program"], status=r["status"].name.lower(),
            values=flat, decimal_values=[Decimal(repr(x)) for x in flat],
            named=dict(zip(names, flat, strict=True)), count=len(flat),
            shape=tuple(int(d) for d in arr.shape), labels=(), digest=r["result_digest"],
            final=r["final"], private=True, line=f"decrypted locally: {flat[:8]}",
            fetched_from=r["fetched_from"],
        )  # fmt: skip

    async def result_async(self, task_id: int, **kw: Any) -> Result:
        return await to_thread(self.result, task_id, **kw)

    async def post_async(self, program: str, **kw: Any) -> Task:
        """:meth:`post` without blocking the caller's event loop."""
        return await to_thread(self.post, program, **kw)

    async def query_async(self, sql: str, schemas: Sequence[str | Path], **kw: Any) -> Task:
        """:meth:`query` without blocking the caller's event loop."""
        return await to_thread(self.query, sql, schemas, **kw)

    # ---- datasets --------------------------------------------------------------------------

    def datasets(self, include_all: bool = False) -> list[dict[str, Any]]:
        """The catalogue: price, expiry, schema digest, programs, privacy budget left."""
        now = self.chain.block_timestamp()
        rows = [catalog.describe(d, now) for d in self.chain.datasets()]
        return rows if include_all else [r for r in rows if r["state"] == "live"]

    def dataset(self, dataset_id: int) -> dict[str, Any]:
        d = self.chain.dataset_info(dataset_id)
        if not d.exists:
            raise SdkError(f"dataset {dataset_id} does not exist")
        j = catalog.describe(d, self.chain.block_timestamp())
        j["spent"] = d.spent / catalog.MICRO
        j["ledger"] = catalog.ledger(self.chain, dataset_id)
        return j

    def publish(
        self,
        *,
        schema: str | Path | None = None,
        schema_digest: str | None = None,
        rows: int,
        price: Amount,
        expires_in: str | int = "30d",
        programs: Sequence[str] = (),
        families: Sequence[str] = (),
        epsilon: str | float | None = None,
        rho: str | float | None = None,
        sample: str = "",
    ) -> int:
        """Register a dataset owned by this account (its public schema, declared rows, price
        per task, allowed programs and a privacy budget that can never be raised); returns
        its id. The data itself stays here: run :meth:`owner_agent` to serve it."""
        digest = catalog.digest_of(Path(schema) if schema else None, schema_digest)
        ids = catalog.program_ids(programs, families)
        if not ids:
            raise SdkError("allow at least one --program or --family")
        kind, budget = catalog.budget_of(epsilon, rho)
        catalog.check_locator(sample)
        chain = self.signer
        expiry = chain.block_timestamp() + catalog.parse_duration(expires_in)
        return int(chain.register_dataset(
            schema_digest=digest, rows=rows, price=wei(price), expiry=expiry, programs=ids,
            budget=budget, budget_kind=kind, locator=sample,
        ))  # fmt: skip

    def owner_agent(
        self,
        datasets: Sequence[Mapping[str, Any]],
        *,
        bootstrap: Sequence[str] | None = None,
        confirmations: int | None = None,
        poll_interval: float | None = None,
        metrics_port: int | None = None,
    ) -> OwnerAgentHandle:
        """Start this owner's agent in-process (a background thread with its own trio loop and
        libp2p host): it contributes the datasets to the tasks that fit their policies.

        ``datasets``: ``{"name": ..., "file": "sales.csv", "dataset_id": 1, "policy":
        {"programs": ["query.*"], "min_reward": "0.1ether"}}`` (policy keys as in owner.toml).
        Use it as a context manager, or call ``.stop()``."""
        from dnode.cli.sdk.agent import OwnerAgentHandle, agent_config

        cfg = agent_config(self.home, datasets, bootstrap=self._boot(bootstrap),
                           confirmations=confirmations, poll_interval=poll_interval,
                           metrics_port=metrics_port)  # fmt: skip
        return OwnerAgentHandle.start(cfg, self.account, self.signer)


def programs() -> list[dict[str, Any]]:
    """Every program a task can run, with its arguments and what it reveals.

    >>> names = [p["name"] for p in programs()]
    >>> "mpc.mean" in names and "query" in names
    True
    """
    from dnode.scheduler.programs import all_programs

    return [describe(s) for s in all_programs()]


def _checksum(a: str) -> str:
    from eth_utils import to_checksum_address

    return str(to_checksum_address(a))


def check_sizes(committee: int, seat_timeout: int, report_timeout: int) -> None:
    """The committee size and timeouts the contract would refuse, refused before any RPC."""
    if not MIN_COMMITTEE <= committee <= MAX_COMMITTEE:
        raise SdkError(
            f"committee size must be between {MIN_COMMITTEE} and {MAX_COMMITTEE} "
            f"(an honest majority needs at least 3), not {committee}"
        )
    if not 0 < seat_timeout < report_timeout:
        raise SdkError("need 0 < --seat-timeout < --report-timeout")


def owners_by_table(
    tables_of: Mapping[str, Sequence[Column]], owners: Sequence[str], tables: Sequence[str]
) -> dict[str, list[str]]:
    """Which owners hold which table: one table for all, or one per owner."""
    from eth_utils import is_address

    if tables and len(tables) not in (1, len(owners)):
        raise SdkError(f"give one --table for all owners, or one per --owner ({len(owners)})")
    names = list(tables) * (len(owners) // max(1, len(tables))) if tables else []
    if not names and owners:
        if len(tables_of) != 1:
            raise SdkError("several --schema tables: say which one each --owner holds (--table)")
        names = [next(iter(tables_of))] * len(owners)
    out: dict[str, list[str]] = {}
    for o, t in zip(owners, names, strict=True):
        if not is_address(o):
            raise SdkError(f"data owner {o!r} is not an address")
        if t not in tables_of:
            raise SdkError(f"--table {t!r} has no --schema (known: {', '.join(tables_of)})")
        out.setdefault(t, []).append(_checksum(o))
    return out


def describe(spec: Any) -> dict[str, Any]:
    """One program as ``dnode programs --json`` lists it: arguments, inputs, what it reveals
    and to whom, its cost."""
    args = [*spec.all_args, *getattr(spec, "he_args", ())]
    return {
        "name": spec.name,
        "id": "0x" + spec.program_id.hex(),
        "capability": spec.capability,
        "family": spec.family or spec.name.split(".")[0],
        "description": spec.description,
        "inputs": (
            f"table columns of type {', '.join(spec.input_types)} "
            f"({spec.min_columns}..{spec.max_columns})"
            if spec.uses_table
            else "the requester's ciphertexts"
        ),
        "args": [
            {
                "name": a.name,
                "type": a.type,
                "help": a.help,
                "default": a.default,
                "required": a.required,
            }
            for a in args
        ],  # fmt: skip
        "reveals": spec.reveals,
        "revealed_to": spec.revealed_to,
        "codec": spec.codec,
        "cost": spec.cost,
    }

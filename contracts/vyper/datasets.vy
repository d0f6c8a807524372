# pragma version 0.4.3
"""
@title dnode data marketplace: dataset registry, privacy budgets, tasks over datasets
@notice An owner registers a dataset (schema digest, declared rows, price per task, expiry,
        allowed programs, a total privacy budget and a public sample locator). A task over
        datasets escrows the committee's reward plus each dataset's price and charges each
        dataset's privacy budget when it is posted. Once the task ends, anyone settles it:
        a task with a result (finalized or overturned) credits each owner its price; a
        refunded task credits the prices back to the requester and releases the budget it
        charged if no committee ever formed for it. Owners withdraw with the registry's single withdraw() (pull payments).
@dev Privacy budgets are fixed-point integers in millionths: budget kind 1 = pure
     epsilon-DP in micro-epsilon (1_000_000 = epsilon 1.0), kind 2 = zCDP in micro-rho. A
     budget is set once at registration and never raised (a budget that can be topped up
     protects nothing): update_dataset cannot touch it. Family policies are expanded to
     their program ids off-chain (a family cannot be checked against a program id here).
     Money: `data_escrow` is the sum of the prices of tasks not yet settled, so the
     contract's balance == task escrows + stakes + unbonding + credits + dispute bonds +
     data_escrow. Storage is used by the `dnode_data` extension only (DELEGATECALL from
     dnode); dnode initializes this module for the layout alone.
"""

import registry
import market

uses: registry
uses: market

MAX_PROGRAMS: constant(uint256) = 16  # allowed program ids per dataset
MAX_TASK_DATASETS: constant(uint256) = 8  # datasets one task may name
MAX_LOCATOR: constant(uint256) = 256
EPSILON: constant(uint256) = 1  # pure epsilon-DP, micro-epsilon
RHO: constant(uint256) = 2  # zCDP, micro-rho
MAX_BUDGET: constant(uint256) = (1 << 64) - 1
MAX_ID: constant(uint256) = (1 << 64) - 1
MAX_ROWS: constant(uint256) = (1 << 40) - 1

# Dataset.head: owner 0..159 | expiry 160..199 | budget kind 200..207 | retired 208 |
# declared rows 216..255
EXPIRY_OFF: constant(uint256) = 160
KIND_OFF: constant(uint256) = 200
RETIRED_BIT: constant(uint256) = 1 << 208
ROWS_OFF: constant(uint256) = 216
# Dataset.money: price 0..95 | budget 96..159 | spent 160..223
BUDGET_OFF: constant(uint256) = 96
SPENT_OFF: constant(uint256) = 160
# task entry: dataset id 0..63 | cost 64..127 | price 128..223 | (entry 0 only) count 224..231
COST_OFF: constant(uint256) = 64
PRICE_OFF: constant(uint256) = 128
COUNT_OFF: constant(uint256) = 224
PRICE_MASK: constant(uint256) = (1 << 96) - 1


struct Dataset:
    head: uint256
    money: uint256
    schema: bytes32
    programs: DynArray[bytes32, MAX_PROGRAMS]
    locator: String[MAX_LOCATOR]


struct DatasetInfo:
    owner: address
    schema_digest: bytes32
    rows: uint256
    price: uint256
    expiry: uint256
    budget_kind: uint256
    budget: uint256
    spent: uint256
    retired: bool
    programs: DynArray[bytes32, MAX_PROGRAMS]
    locator: String[MAX_LOCATOR]


event DatasetRegistered:
    dataset_id: indexed(uint256)
    owner: indexed(address)
    schema_digest: bytes32
    rows: uint256
    price: uint256
    expiry: uint256
    budget_kind: uint256
    budget: uint256
    programs: DynArray[bytes32, MAX_PROGRAMS]
    locator: String[MAX_LOCATOR]

event DatasetUpdated:
    dataset_id: indexed(uint256)
    owner: indexed(address)
    price: uint256
    expiry: uint256
    programs: DynArray[bytes32, MAX_PROGRAMS]
    locator: String[MAX_LOCATOR]

event DatasetRetired:
    dataset_id: indexed(uint256)
    owner: indexed(address)

event TaskDatasets:
    task_id: indexed(uint256)
    requester: indexed(address)
    dataset_ids: DynArray[uint256, MAX_TASK_DATASETS]
    costs: DynArray[uint256, MAX_TASK_DATASETS]
    prices: DynArray[uint256, MAX_TASK_DATASETS]

event DatasetPaid:
    dataset_id: indexed(uint256)
    task_id: indexed(uint256)
    owner: indexed(address)
    amount: uint256

event DatasetRefunded:
    dataset_id: indexed(uint256)
    task_id: indexed(uint256)
    requester: indexed(address)
    amount: uint256
    released: uint256  # privacy budget returned to the dataset


datasets: HashMap[uint256, Dataset]
dataset_count: public(uint256)
# packed entries (id | cost | price) of the tasks not yet settled, entry i of task t at key
# t * MAX_TASK_DATASETS + i; entry 0 also holds the count (one slot for a one-dataset task);
# settlement zeroes them
task_entries: HashMap[uint256, uint256]
# sum of the escrowed prices of unsettled tasks
data_escrow: public(uint256)


# ---------------------------------------------------------------- helpers


@internal
@view
def _owned(dataset_id: uint256) -> Dataset:
    """The one access check of every owner action: the caller owns a live dataset."""
    d: Dataset = self.datasets[dataset_id]
    assert d.head != 0, "datasets: unknown dataset"
    assert convert(convert(d.head & market.ADDR_MASK, uint160), address) == msg.sender, (
        "datasets: not the owner"
    )
    assert d.head & RETIRED_BIT == 0, "datasets: dataset retired"
    return d


@internal
@view
def _check_terms(price: uint256, expiry: uint256):
    assert price <= market.MAX_REWARD, "datasets: price too large"
    assert expiry > block.timestamp, "datasets: expiry in the past"
    assert expiry <= market.MAX_TIME, "datasets: expiry too far"


@internal
@pure
def _allows(programs: DynArray[bytes32, MAX_PROGRAMS], program_id: bytes32) -> bool:
    for p: bytes32 in programs:
        if p == program_id:
            return True
    return False


# ---------------------------------------------------------------- owner actions


@external
@nonreentrant
def register_dataset(
    schema_digest: bytes32,
    rows: uint256,
    price: uint256,
    expiry: uint256,
    programs: DynArray[bytes32, MAX_PROGRAMS],
    budget_kind: uint256,
    budget: uint256,
    locator: String[MAX_LOCATOR],
) -> uint256:
    """
    @notice Register a dataset owned by the caller.
    @param schema_digest digest of the dataset's public schema (non-zero)
    @param rows row count, as declared by the owner (not verified)
    @param price wei per task, credited to the owner when a task over it ends with a result
    @param expiry timestamp after which no task may name the dataset
    @param programs program ids (keccak256 of the program name) allowed to run on it
    @param budget_kind 1: pure epsilon-DP, 2: zCDP rho
    @param budget total privacy budget in millionths of epsilon (or rho); never raised
    @param locator where the public sample (mock) data is fetched from
    @return the new dataset id (ids start at 1)
    """
    assert schema_digest != empty(bytes32), "datasets: empty schema digest"
    assert rows <= MAX_ROWS, "datasets: row count too large"
    self._check_terms(price, expiry)
    assert len(programs) > 0, "datasets: no program allowed"
    assert budget_kind == EPSILON or budget_kind == RHO, "datasets: bad budget kind"
    assert budget > 0 and budget <= MAX_BUDGET, "datasets: bad privacy budget"
    dataset_id: uint256 = self.dataset_count + 1
    assert dataset_id <= MAX_ID, "datasets: registry full"
    self.dataset_count = dataset_id
    self.datasets[dataset_id] = Dataset(
        head=(
            convert(msg.sender, uint256)
            | (expiry << EXPIRY_OFF)
            | (budget_kind << KIND_OFF)
            | (rows << ROWS_OFF)
        ),
        money=price | (budget << BUDGET_OFF),
        schema=schema_digest,
        programs=programs,
        locator=locator,
    )
    log DatasetRegistered(
        dataset_id=dataset_id,
        owner=msg.sender,
        schema_digest=schema_digest,
        rows=rows,
        price=price,
        expiry=expiry,
        budget_kind=budget_kind,
        budget=budget,
        programs=programs,
        locator=locator,
    )
    return dataset_id


@external
@nonreentrant
def update_dataset(
    dataset_id: uint256,
    price: uint256,
    expiry: uint256,
    programs: DynArray[bytes32, MAX_PROGRAMS],
    locator: String[MAX_LOCATOR],
):
    """
    @notice Change a dataset's price, expiry, allowed programs and sample locator (owner
            only). The privacy budget is not a parameter: it can never be raised. Tasks
            already posted keep the price and policy they were posted under.
    """
    d: Dataset = self._owned(dataset_id)
    self._check_terms(price, expiry)
    assert len(programs) > 0, "datasets: no program allowed"
    d.head = market._put(d.head, EXPIRY_OFF, 40, expiry)
    d.money = market._put(d.money, 0, 96, price)
    d.programs = programs
    d.locator = locator
    self.datasets[dataset_id] = d
    log DatasetUpdated(
        dataset_id=dataset_id,
        owner=msg.sender,
        price=price,
        expiry=expiry,
        programs=programs,
        locator=locator,
    )


@external
@nonreentrant
def retire_dataset(dataset_id: uint256):
    """
    @notice Retire a dataset for good (owner only): no task may name it any more. Tasks
            already posted over it still settle (paid or refunded) as usual.
    """
    d: Dataset = self._owned(dataset_id)
    self.datasets[dataset_id].head = d.head | RETIRED_BIT
    log DatasetRetired(dataset_id=dataset_id, owner=msg.sender)


# ---------------------------------------------------------------- tasks over datasets


@external
@payable
@nonreentrant
def post_data_task(
    program_id: bytes32,
    params_digest: bytes32,
    capability: uint256,
    committee_size: uint256,
    seat_deadline: uint256,
    compute_window: uint256,
    reward: uint256,
    dataset_ids: DynArray[uint256, MAX_TASK_DATASETS],
    costs: DynArray[uint256, MAX_TASK_DATASETS],
) -> uint256:
    """
    @notice Post a task over datasets: msg.value must be exactly `reward` (the committee's
            escrow, as in post_task) plus the current price of every named dataset, so a
            price raised after the requester looked makes the post fail rather than cost
            more. Each dataset must allow `program_id`, be live (not retired, before its
            expiry) and have costs[i] of privacy budget left, which is charged now.
    @param dataset_ids the datasets the task computes over (distinct, 1..8)
    @param costs privacy cost per dataset, same units as its budget (> 0)
    @return the new task id
    """
    n: uint256 = len(dataset_ids)
    assert n > 0, "datasets: no dataset named"
    assert len(costs) == n, "datasets: one cost per dataset"
    total: uint256 = 0
    entries: DynArray[uint256, MAX_TASK_DATASETS] = []
    prices: DynArray[uint256, MAX_TASK_DATASETS] = []
    for i: uint256 in range(n, bound=MAX_TASK_DATASETS):
        dataset_id: uint256 = dataset_ids[i]
        for j: uint256 in range(i, bound=MAX_TASK_DATASETS):
            assert dataset_ids[j] != dataset_id, "datasets: duplicate dataset"
        head: uint256 = self.datasets[dataset_id].head
        assert head != 0, "datasets: unknown dataset"
        assert head & RETIRED_BIT == 0, "datasets: dataset retired"
        assert block.timestamp < market._get(head, EXPIRY_OFF, 40), "datasets: dataset expired"
        assert self._allows(self.datasets[dataset_id].programs, program_id), (
            "datasets: program not allowed"
        )
        cost: uint256 = costs[i]
        assert cost > 0, "datasets: zero privacy cost"
        money: uint256 = self.datasets[dataset_id].money
        spent: uint256 = market._get(money, SPENT_OFF, 64) + cost
        assert spent <= market._get(money, BUDGET_OFF, 64), "datasets: privacy budget exhausted"
        self.datasets[dataset_id].money = market._put(money, SPENT_OFF, 64, spent)
        price: uint256 = money & market.MAX_REWARD
        total += price
        prices.append(price)
        entries.append(dataset_id | (cost << COST_OFF) | (price << PRICE_OFF))
    assert msg.value == reward + total, "datasets: payment is not reward plus prices"
    task_id: uint256 = market._post_task(
        msg.sender,
        reward,
        program_id,
        params_digest,
        capability,
        committee_size,
        seat_deadline,
        compute_window,
        empty(address),
        0,
    )
    base: uint256 = task_id * MAX_TASK_DATASETS
    self.task_entries[base] = entries[0] | (n << COUNT_OFF)
    for i: uint256 in range(1, n, bound=MAX_TASK_DATASETS):
        self.task_entries[base + i] = entries[i]
    self.data_escrow += total
    log TaskDatasets(
        task_id=task_id, requester=msg.sender, dataset_ids=dataset_ids, costs=costs, prices=prices
    )
    return task_id


@external
@nonreentrant
def settle_datasets(task_id: uint256, t: market.Task):
    """
    @notice Settle the dataset payments of an ended task (anyone may call, once): finalized
            or overturned (the requester got a result) credits each owner its price;
            refunded credits the prices back to the requester and, if no committee ever
            formed (nobody could have opened any output), releases the privacy budget the
            task charged; a task refunded after its committee formed keeps the charge.
    @param task_id a task posted with post_data_task
    @param t the task record (as rebuilt from events)
    """
    status: uint256 = market._load(task_id, t)
    base: uint256 = task_id * MAX_TASK_DATASETS
    first: uint256 = self.task_entries[base]
    assert first != 0, "datasets: nothing to settle"
    refund: bool = status == market.REFUNDED
    assert refund or status == market.FINALIZED or status == market.OVERTURNED, (
        "datasets: task not ended"
    )
    # the budget comes back only if no committee ever sat: once one formed, its seats may
    # have opened (noisy) outputs before the task failed, so the charge stays spent
    release: bool = refund and len(t.committee) == 0
    total: uint256 = 0
    for i: uint256 in range(first >> COUNT_OFF, bound=MAX_TASK_DATASETS):
        e: uint256 = first
        if i > 0:
            e = self.task_entries[base + i]
        self.task_entries[base + i] = 0
        dataset_id: uint256 = e & MAX_ID
        price: uint256 = (e >> PRICE_OFF) & PRICE_MASK
        total += price
        if refund:
            cost: uint256 = 0
            if release:
                cost = market._get(e, COST_OFF, 64)
                money: uint256 = self.datasets[dataset_id].money
                self.datasets[dataset_id].money = market._put(
                    money, SPENT_OFF, 64, market._get(money, SPENT_OFF, 64) - cost
                )
            log DatasetRefunded(
                dataset_id=dataset_id,
                task_id=task_id,
                requester=t.requester,
                amount=price,
                released=cost,
            )
        else:
            owner: address = convert(
                convert(self.datasets[dataset_id].head & market.ADDR_MASK, uint160), address
            )
            registry._credit(owner, price)
            log DatasetPaid(dataset_id=dataset_id, task_id=task_id, owner=owner, amount=price)
    if refund:
        registry._credit(t.requester, total)
    self.data_escrow -= total


# ---------------------------------------------------------------- views


@external
@view
def dataset_info(dataset_id: uint256) -> DatasetInfo:
    """
    @notice Everything about a dataset (an unknown id returns the zero owner).
    """
    d: Dataset = self.datasets[dataset_id]
    return DatasetInfo(
        owner=convert(convert(d.head & market.ADDR_MASK, uint160), address),
        schema_digest=d.schema,
        rows=d.head >> ROWS_OFF,
        price=d.money & market.MAX_REWARD,
        expiry=market._get(d.head, EXPIRY_OFF, 40),
        budget_kind=market._get(d.head, KIND_OFF, 8),
        budget=market._get(d.money, BUDGET_OFF, 64),
        spent=market._get(d.money, SPENT_OFF, 64),
        retired=d.head & RETIRED_BIT != 0,
        programs=d.programs,
        locator=d.locator,
    )


@external
@view
def budget_left(dataset_id: uint256) -> uint256:
    """
    @notice Privacy budget a dataset has left (millionths of epsilon or rho).
    """
    money: uint256 = self.datasets[dataset_id].money
    return market._get(money, BUDGET_OFF, 64) - market._get(money, SPENT_OFF, 64)


@external
@view
def task_datasets(task_id: uint256) -> DynArray[uint256, MAX_TASK_DATASETS]:
    """
    @notice Packed entries (dataset id 0..63 | cost 64..127 | price 128..223) of a task not
            yet settled; empty once settled (or for a task without datasets).
    """
    base: uint256 = task_id * MAX_TASK_DATASETS
    first: uint256 = self.task_entries[base]
    out: DynArray[uint256, MAX_TASK_DATASETS] = []
    for i: uint256 in range(first >> COUNT_OFF, bound=MAX_TASK_DATASETS):
        if i == 0:
            out.append(first & ~(255 << COUNT_OFF))
        else:
            out.append(self.task_entries[base + i])
    return out

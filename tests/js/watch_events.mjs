// A dApp's view of dnode: ethers.js contract.on("*") against a JSON-RPC endpoint, printing one
// JSON line per event it is told about (tests/contracts/test_ethers_events.py reads them).
// ethers polls with eth_newFilter (no fromBlock) + eth_getFilterChanges on each new block.
import { readFileSync } from "node:fs";
import { Contract, JsonRpcProvider } from "ethers";

const [url, address, abiPath] = process.argv.slice(2);
const abi = JSON.parse(readFileSync(abiPath, "utf8"));
const provider = new JsonRpcProvider(url, undefined, { pollingInterval: 250 });
const contract = new Contract(address, abi, provider);
await contract.on("*", (event) => {
  const log = event.log;
  console.log(JSON.stringify({
    name: event.eventName ?? event.fragment?.name ?? null,
    tx: log.transactionHash,
    index: log.index,
    block: log.blockNumber,
  }));
});
console.log(JSON.stringify({ ready: true, block: await provider.getBlockNumber() }));
process.on("SIGTERM", async () => { await contract.removeAllListeners(); process.exit(0); });

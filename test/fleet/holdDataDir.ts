/**
 * A process holding a data directory, for the tests: opens the directory
 * given, prints "ready", then commits one instance at a time, printing
 * "committed N" after the N-th commit, until it is killed.
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import * as Database from "../../src/fleet/Database.js"

const dataDir = process.argv[2]!

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  process.stdout.write("ready\n")
  for (let n = 1;; n++) {
    yield* sql`INSERT INTO instances (id) VALUES (${`machine-${n}`})`
    process.stdout.write(`committed ${n}\n`)
  }
})

NodeRuntime.runMain(program.pipe(Effect.provide(Database.layerPglite({ dataDir })), Effect.provide(NodeContext.layer)))

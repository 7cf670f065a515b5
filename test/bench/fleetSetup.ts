/**
 * The fleet the fleet bench checks against, and the machines that check: one
 * application (update_engine's captured request's app id), one package on a
 * channel, one group (the request's track) allowing 5 updates per hour, and
 * 100,000 registered machines, inserted in two statements. The first 10,000
 * check in; every 50th of them is on the version before the channel's (on
 * hold once the period's 5 updates are granted), the rest on the channel's
 * version (no update).
 *
 * The checks are update_engine's periodic ones: its captured request (ping
 * and update check) without the 3/2 event it carries only on the first check
 * after an update, which {@link requestWithEventOf} keeps.
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"

/** The app id and track of update_engine's captured request. */
export const appId = "{87efface-864d-49a5-9bb3-4b050a7c227a}"
export const track = "dev-channel"
/** The channel's version (what serve-package serves) and the one before it. */
export const current = "3815.2.1"
export const older = "3815.2.0"
export const registered = 100_000
export const checking = 10_000
/** One in this many checking machines is on the older version. */
export const olderEvery = 50

/** A machine id shaped as update_engine's (a braced GUID). */
export const machineId = (i: number): string => `{${i.toString(16).padStart(8, "0")}-9083-4d61-b41c-3253212c0c37}`

/** The version machine `i` reports. */
export const versionOf = (i: number): string => (i % olderEvery === 0 ? older : current)

const captured = Fs.readFileSync(new URL("../../fixtures/omaha/update-engine/update/request.xml", import.meta.url), "utf8")

const event = /<event [^>]*><\/event>\n/
if (!event.test(captured)) throw new Error("the captured request has no event to leave out")
const periodic = captured.replace(event, "")

const fill = (text: string, i: number) =>
  text.replace("{8BDE4C4D-9083-4D61-B41C-3253212C0C37}", machineId(i)).replaceAll("ForcedUpdate", versionOf(i))

/** update_engine's periodic check from machine `i`, at its version: ping and update check. */
export const requestOf = (i: number): string => fill(periodic, i)

/** The first check after an update, as captured: ping, update check and the 3/2 event. */
export const requestWithEventOf = (i: number): string => fill(captured, i)

/** {@link requestOf} with placeholders for wrk's script: @MACHINE@ and @VERSION@. */
export const requestTemplate: string = periodic
  .replace("{8BDE4C4D-9083-4D61-B41C-3253212C0C37}", "@MACHINE@")
  .replaceAll("ForcedUpdate", "@VERSION@")

/** The wrk script that posts {@link requestOf} for machines 0, 1, ... 9,999 in turn, bodies made before the run. */
export const wrkScript = (templateFile: string): string => `
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/xml"
local f = io.open("${templateFile}", "r")
local template = f:read("*a")
f:close()
local bodies = {}
for i = 0, ${checking - 1} do
  local version = (i % ${olderEvery} == 0) and "${older}" or "${current}"
  local id = string.format("{%08x-9083-4d61-b41c-3253212c0c37}", i)
  local body = template:gsub("@MACHINE@", id)
  body = body:gsub("@VERSION@", version)
  bodies[i] = body
end
local n = 0
request = function()
  local body = bodies[n % ${checking}]
  n = n + 1
  return wrk.format(nil, nil, nil, body)
end
`

/** The payload's facts as the package row stores them. */
export const factsOf = (bytes: Uint8Array) => ({
  size: bytes.length,
  sha1: Crypto.createHash("sha1").update(bytes).digest("base64"),
  sha256: Crypto.createHash("sha256").update(bytes).digest("base64")
})

/** Writes the fleet into an empty database. */
export const seed = (payload: Uint8Array): Effect.Effect<void, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const facts = factsOf(payload)
    yield* sql`INSERT INTO applications (id, name) VALUES (${appId}, 'Bench OS')`
    const [pkg] = yield* sql<{ id: number }>`INSERT INTO packages (app_id, version, arch, name, size, sha1, sha256)
      VALUES (${appId}, ${current}, 'amd64', 'update.gz', ${facts.size}, ${facts.sha1}, ${facts.sha256}) RETURNING id`
    yield* sql`INSERT INTO channels (app_id, name, arch, package_id) VALUES (${appId}, 'dev', 'amd64', ${pkg!.id})`
    const [group] = yield* sql<{ id: string }>`INSERT INTO groups (app_id, name, track, channel, max_updates_per_period,
        period_seconds, safe_mode)
      VALUES (${appId}, 'dev', ${track}, 'dev', 5, 3600, false) RETURNING id::text AS id`
    const since = new Date(Date.now() - 86_400_000)
    yield* sql`INSERT INTO instances (id, alias, ip, oem, created_at, last_seen)
      SELECT '{' || lpad(to_hex(i), 8, '0') || '-9083-4d61-b41c-3253212c0c37}', 'mymachine', '127.0.0.1', 'ec3000', ${since}, ${since}
      FROM generate_series(0, ${registered - 1}) AS i`
    yield* sql`INSERT INTO instance_apps (instance_id, app_id, group_id, track, arch, version, status, last_check)
      SELECT '{' || lpad(to_hex(i), 8, '0') || '-9083-4d61-b41c-3253212c0c37}', ${appId}, ${group!.id}::uuid, ${track}, 'amd64',
        CASE WHEN i < ${checking} AND i % ${olderEvery} = 0 THEN ${older} ELSE ${current} END, 'complete', ${since}
      FROM generate_series(0, ${registered - 1}) AS i`
    yield* sql`ANALYZE`
  })

/** What the runs left in the database: machines seen since `since`, grants, machines on hold. */
export const outcome = (since: Date): Effect.Effect<{ seen: number; grants: number; onHold: number }, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ seen: number; grants: number; on_hold: number }>`SELECT
      (SELECT count(*)::int FROM instance_apps WHERE last_check >= ${since}) AS seen,
      (SELECT count(*)::int FROM grants) AS grants,
      (SELECT count(*)::int FROM instance_apps WHERE status = 'onHold') AS on_hold`
    return { seen: row!.seen, grants: row!.grants, onHold: row!.on_hold }
  })

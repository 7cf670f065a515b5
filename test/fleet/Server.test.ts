/**
 * The fleet server with its rollout engine: what is changed through the
 * admin API is what the Omaha endpoint answers next (the configuration
 * tables announce each change; nothing else tells the engine), and hosted
 * payloads are offered at the codebase the engine names.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Xml } from "effect-omaha"
import * as Crypto from "node:crypto"
import * as FleetUpdater from "../../src/fleet/FleetUpdater.js"
import { post } from "../server/support.js"
import { app, client, FleetServer, layer as fleetLayer, request } from "./fleetServer.js"

const flatcar = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"

const check = (machineId: string, version: string) => `<?xml version="1.0" encoding="UTF-8"?>
<request protocol="3.0" version="update_engine-0.4.10" updaterversion="update_engine-0.4.10" installsource="scheduler" ismachine="1">
 <os version="Chateau" platform="CoreOS" sp="${version}_x86_64"></os>
 <app appid="${flatcar}" version="${version}" track="beta" machineid="${machineId}" board="amd64-usr">
  <ping active="1"></ping>
  <updatecheck></updatecheck>
 </app>
</request>`

// Polls the endpoint until the answer offers `version` (or `noupdate` when undefined), for up to `ms`.
const offered = (base: string, machineId: string, from: string) =>
  Effect.promise(async () => {
    const reply = await post(base, check(machineId, from))
    const response = await Effect.runPromise(Xml.decodeResponse(reply.text))
    const update = response.apps[0]!.updateCheck!
    return update.status === "ok" ? update.manifests[0]!.version : update.status
  })

const within = <A>(ms: number, effect: Effect.Effect<A>, done: (a: A) => boolean) =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    for (;;) {
      const a = yield* effect
      if (done(a) || Date.now() > deadline) return a
      yield* Effect.promise(() => new Promise((r) => setTimeout(r, 50)))
    }
  })

layer(fleetLayer({}, FleetUpdater.layer({ pollInterval: "1 hour" })), { timeout: 60_000 })("fleet server", (it) => {
  it.effect("a channel moved through the API is what the next check is offered, within a second", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      const api = client(fleet, fleet.admin)
      yield* api.post("/api/apps", { id: flatcar, name: "Flatcar" })
      const payloads = [Crypto.randomBytes(1000), Crypto.randomBytes(1000)]
      for (const [i, bytes] of payloads.entries()) {
        const put = yield* Effect.promise(() =>
          request(fleet.base, "PUT", `${app(flatcar)}/packages/4000.0.${i}?arch=amd64`, { token: fleet.admin, body: bytes })
        )
        expect(put.status).toBe(201)
      }
      yield* api.post(`${app(flatcar)}/channels`, { name: "beta", arch: "amd64", package: "4000.0.0" })
      yield* api.post(`${app(flatcar)}/groups`, {
        name: "beta",
        channel: "beta",
        policy: { maxUpdatesPerPeriod: 100, safeMode: false }
      })
      expect(yield* within(2000, offered(fleet.base, "m-1", "3000.0.0"), (v) => v === "4000.0.0")).toBe("4000.0.0")

      const moved = yield* api.patch(`${app(flatcar)}/channels/beta?arch=amd64`, { package: "4000.0.1" })
      expect(moved.status).toBe(200)
      const started = Date.now()
      expect(yield* within(1000, offered(fleet.base, "m-2", "3000.0.0"), (v) => v === "4000.0.1")).toBe("4000.0.1")
      expect(Date.now() - started).toBeLessThan(1000)

      // A paused group holds every machine; resumed, it grants again.
      yield* api.post(`${app(flatcar)}/groups/beta/pause`, { reason: "checking" })
      expect(yield* within(1000, offered(fleet.base, "m-3", "3000.0.0"), (v) => v === "noupdate")).toBe("noupdate")
      yield* api.post(`${app(flatcar)}/groups/beta/resume`)
      expect(yield* within(1000, offered(fleet.base, "m-3", "3000.0.0"), (v) => v === "4000.0.1")).toBe("4000.0.1")
    }))
})

layer(
  fleetLayer(
    { publicBaseUrl: "https://updates.example.com/fleet/", trustedProxies: ["127.0.0.1"] },
    FleetUpdater.layer({ pollInterval: "1 hour" })
  ),
  { timeout: 60_000 }
)("fleet server behind a proxy", (it) => {
  it.effect("codebases start at --base-url; a trusted proxy's X-Forwarded-For is the machine's address", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      const api = client(fleet, fleet.admin)
      yield* api.post("/api/apps", { id: flatcar, name: "Flatcar" })
      const bytes = Crypto.randomBytes(500)
      yield* Effect.promise(() =>
        request(fleet.base, "PUT", `${app(flatcar)}/packages/4000.0.0?arch=amd64`, { token: fleet.admin, body: bytes })
      )
      yield* api.post(`${app(flatcar)}/channels`, { name: "beta", arch: "amd64", package: "4000.0.0" })
      yield* api.post(`${app(flatcar)}/groups`, { name: "beta", channel: "beta" })
      const reply = yield* within(
        2000,
        Effect.promise(() => post(fleet.base, check("proxied", "3000.0.0"), { "x-forwarded-for": "198.51.100.7" })),
        (r) => r.text.includes(`status="ok"`) && r.text.includes("<manifest")
      )
      const response = yield* Xml.decodeResponse(reply.text)
      const hex = Crypto.createHash("sha256").update(bytes).digest("hex")
      expect(response.apps[0]!.updateCheck!.urls.map((u) => u.codebase)).toEqual([
        `https://updates.example.com/fleet/packages/${hex}/`
      ])
      const machine = yield* within(
        3000,
        Effect.promise(() => request(fleet.base, "GET", `${app(flatcar)}/instances/proxied`, { token: fleet.admin })),
        (r) => r.status === 200 && r.json.ip !== ""
      )
      expect(machine.json.ip).toBe("198.51.100.7")
    }))
})

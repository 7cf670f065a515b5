/**
 * A whole fleet server in-process on 127.0.0.1, composed as `fleet-server
 * serve` composes it: the rollout engine (FleetUpdater), the metrics and the
 * webhooks it tells, the API and the payloads, on PGlite in memory with a
 * temporary payload directory; an admin and a viewer token.
 */
import { Effect, type Scope } from "effect"
import * as FleetUpdater from "../../src/fleet/FleetUpdater.js"
import { type Fleet, start, type StartOptions } from "./fleetServer.js"
import { request } from "./http.js"

export type { Fleet } from "./fleetServer.js"

/** Starts a fleet server with the rollout engine for the scope (on the wall clock). */
export const startFleet = (options: StartOptions = {}): Effect.Effect<Fleet, never, Scope.Scope> =>
  start(options, FleetUpdater.layer({ tracking: { flushInterval: "20 millis" } }))

/** A JSON call to a fleet's API. */
export const api = (fleet: Fleet, method: string, path: string, json?: unknown, token = fleet.admin) =>
  Effect.promise(() => request(fleet.base, method, path, { token, ...(json === undefined ? {} : { json }) }))

/** The API path of an application. */
export const appPath = (id: string) => `/api/apps/${encodeURIComponent(id)}`

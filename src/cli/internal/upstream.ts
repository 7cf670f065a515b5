/**
 * The sync's upstream over the project's own Omaha client: each check is
 * one `AppClient.updateCheck` (ping, update check and the 3/2 event, as
 * update_engine sends them) with `multi_manifest_ok`, the board of the
 * channel's arch, and the syncer's machine id. It lives with the command
 * because the fleet does not import the client: the fleet declares the port
 * (`Sync.Upstream`) and this provides it.
 */
import type { HttpClient } from "@effect/platform"
import { Effect, Layer } from "effect"
import * as AppClient from "../../client/AppClient.js"
import * as OmahaClient from "../../client/OmahaClient.js"
import { Upstream, UpstreamFailed, type UpstreamService } from "../../fleet/Sync.js"
import { packageVersion } from "../../internal/version.js"
import { Os } from "../../protocol/Request.js"

/** How the upstream is asked. */
export interface Options {
  /** The upstream's URL (an empty path means `/v1/update/`). */
  readonly url: string
  /** Attempts of one check in all; 3 by default (a sync runs again later anyway). */
  readonly tries?: number
}

/** The upstream port over the Omaha client; fails at once for a URL that is not http(s). */
export const make = (options: Options): Effect.Effect<UpstreamService, OmahaClient.InvalidServerUrl, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const url = yield* OmahaClient.parseServerUrl(options.url)
    const context = yield* Effect.context<HttpClient.HttpClient>()
    return {
      url,
      check: (check) =>
        Effect.gen(function*() {
          const omaha = yield* OmahaClient.make({
            serverUrl: url,
            userId: check.machineId,
            sessionId: check.machineId,
            clientVersion: `effect-omaha-fleet-sync-${packageVersion}`,
            isMachine: true,
            os: new Os({ platform: "CoreOS", version: check.version, arch: check.board.startsWith("arm64") ? "arm64" : "x64" }),
            retry: { tries: options.tries ?? 3 }
          })
          const app = yield* AppClient.make({
            appId: check.appId,
            version: check.version,
            track: check.track,
            board: check.board,
            multiManifestOk: true
          }).pipe(Effect.provideService(OmahaClient.OmahaClient, omaha))
          const result = yield* app.updateCheck()
          return result.update
        }).pipe(
          Effect.scoped,
          Effect.provide(context),
          Effect.mapError((error) => new UpstreamFailed({ url, reason: error.message }))
        )
    } satisfies UpstreamService
  })

/** The port as a layer. */
export const layer = (options: Options): Layer.Layer<Upstream, OmahaClient.InvalidServerUrl, HttpClient.HttpClient> =>
  Layer.effect(Upstream, make(options))

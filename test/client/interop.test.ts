// The client against this package's own server (OmahaServer with a recording
// Updater around TrivialUpdater): what the server decodes is what the client
// meant to send, and go-omaha's client example runs end to end.
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import { AppClient, ExitCode, OmahaClient, Package, Request, TrivialUpdater, Updater, Version } from "effect-omaha"
import { startServer } from "../server/support.js"
import * as Flatcar from "./flatcar.js"
import { clientLayer } from "./server.js"

interface Seen {
  readonly checks: Array<{ readonly request: Request.Request; readonly app: Request.AppRequest }>
  readonly events: Array<{ readonly version: string | undefined; readonly event: string }>
}

/** TrivialUpdater offering `version`, recording the update checks and events it is given. */
const recording = (seen: Seen, version: string) =>
  Layer.effect(
    Updater.Updater,
    Effect.gen(function*() {
      const payload = {
        name: "update.gz",
        version: yield* Effect.orDie(Version.parseSemver(version)),
        facts: yield* Package.fromStream(Stream.make(new TextEncoder().encode(`version ${version}`)))
      }
      const trivial = yield* Effect.provide(Updater.Updater, TrivialUpdater.layer(payload))
      return {
        ...trivial,
        checkUpdate: (request, app, client) => {
          seen.checks.push({ request, app })
          return trivial.checkUpdate(request, app, client)
        },
        event: (_, app, event) => Effect.sync(() => void seen.events.push({ version: app.version, event: ExitCode.describeEvent(event) }))
      } satisfies Updater.UpdaterService
    })
  )

describe("the client against OmahaServer", () => {
  it.scopedLive("a Flatcar-like update check decodes in the server with every attribute that was set", () =>
    Effect.gen(function*() {
      const seen: Seen = { checks: [], events: [] }
      const { base } = yield* startServer({}, recording(seen, "3900.0.0"))
      const result = yield* Effect.scoped(
        Effect.flatMap(AppClient.make(Flatcar.appOptions), (app) => app.updateCheck({ installSource: "scheduler" }))
      ).pipe(Effect.provide(clientLayer(base, Flatcar.clientOptions)))
      expect(seen.checks.length).toBe(1)
      const { app, request } = seen.checks[0]!
      expect(request).toMatchObject({ ...Flatcar.expectedRoot, os: Flatcar.clientOptions.os })
      expect(app).toEqual(new Request.AppRequest({ ...Flatcar.expectedApp, events: [AppClient.Events.complete] }))
      expect(seen.events).toEqual([{ version: "3815.2.0", event: "update complete: success, reboot" }])
      // The server's answer, as update_engine needs it: an absolute codebase and the postinstall sha256.
      expect(result).toBeInstanceOf(AppClient.UpdateAvailable)
      if (result._tag !== "UpdateAvailable") return
      expect(result.manifest.version).toBe("3900.0.0")
      expect(result.update.urls[0]!.codebase).toBe(`${base}/packages/`)
      expect(result.manifest.actions[0]).toMatchObject({ event: "postinstall", disablePayloadBackoff: true })
    }))

  it.scopedLive("go-omaha's client example: an update check, the download, install and reboot events, then noupdate", () =>
    Effect.gen(function*() {
      const seen: Seen = { checks: [], events: [] }
      const { base } = yield* startServer({}, recording(seen, "1.0.1"))
      const outcomes = yield* Effect.scoped(Effect.gen(function*() {
        const omaha = yield* OmahaClient.OmahaClient
        const app = yield* AppClient.make({ appId: "5ca607f8-61b5-4692-90ce-30380ba05a98", version: "1.0.0" })
        const check = yield* app.updateCheck({ installSource: "ondemandupdate" })
        if (check._tag !== "UpdateAvailable") return [check._tag]
        yield* app.event(AppClient.Events.downloadFinished)
        yield* app.event(AppClient.Events.installed)
        yield* app.setVersion(check.manifest.version)
        yield* app.event(AppClient.Events.complete)
        yield* omaha.flush
        const again = yield* app.updateCheck()
        return [check._tag, again._tag]
      })).pipe(Effect.provide(clientLayer(base, { userId: "8b10fc6d-30ca-49b2-b1a2-8185f03d522b", clientVersion: "example-0.0.1" })))
      expect(outcomes).toEqual(["UpdateAvailable", "NoUpdate"])
      expect(seen.checks.map((c) => [c.request.version, c.request.installSource, c.app.version])).toEqual([
        ["example-0.0.1", "ondemandupdate", "1.0.0"],
        ["example-0.0.1", undefined, "1.0.1"]
      ])
      expect(seen.events).toEqual([
        { version: "1.0.0", event: "update complete: success, reboot" },
        { version: "1.0.0", event: "update download finished: success" },
        { version: "1.0.0", event: "update complete: success" },
        { version: "1.0.1", event: "update complete: success, reboot" },
        { version: "1.0.1", event: "update complete: success, reboot" }
      ])
    }))
})

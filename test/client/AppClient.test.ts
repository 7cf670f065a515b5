import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Fiber, Logger, Scope } from "effect"
import { AppClient, ExitCode, Machine, OmahaClient, Request } from "effect-omaha"
import { readFixture } from "../fixtures.js"
import * as Flatcar from "./flatcar.js"
import { answerApps, clientLayer, onChecks, reply, startServer, type TestServer } from "./server.js"


/** Runs `f` with an Omaha client for `server` (built and closed around it). */
const withClient = <A, E>(
  server: TestServer,
  f: (omaha: OmahaClient.OmahaClientService) => Effect.Effect<A, E, Scope.Scope | OmahaClient.OmahaClient>,
  options: Partial<OmahaClient.Options> = {}
) =>
  Effect.scoped(Effect.flatMap(OmahaClient.OmahaClient, f)).pipe(Effect.provide(clientLayer(server.url, options)))

const okServer = startServer((received) => answerApps(received.request))

describe("AppClient", () => {
  it.scopedLive("a Flatcar-like update check carries every update_engine attribute that was set", () =>
    Effect.gen(function*() {
      const server = yield* okServer
      const result = yield* withClient(
        server,
        () =>
          Effect.flatMap(AppClient.make(Flatcar.appOptions), (app) =>
            app.updateCheck({ installSource: "scheduler", previousVersion: "3760.2.0" })),
        Flatcar.clientOptions
      )
      expect(result).toBeInstanceOf(AppClient.NoUpdate)
      const [received] = server.received
      const request = received!.request!
      expect(request).toMatchObject(Flatcar.expectedRoot)
      expect(request.os).toEqual(Flatcar.clientOptions.os)
      expect(request.apps.length).toBe(1)
      expect(request.apps[0]).toEqual(
        new Request.AppRequest({
          ...Flatcar.expectedApp,
          events: [new Request.EventRequest({ eventType: 3, eventResult: 2, previousVersion: "3760.2.0" })]
        })
      )
      // The bytes on the wire, in update_engine's spelling.
      for (
        const attribute of [
          `protocol="3.0"`,
          `version="update_engine-0.4.10"`,
          `updaterversion="update_engine-0.4.10"`,
          `installsource="scheduler"`,
          `ismachine="1"`,
          `platform="CoreOS"`,
          `sp="3815.2.0_x86_64"`,
          `appid="${Flatcar.appOptions.appId}"`,
          `hardware_class=""`,
          `delta_okay="false"`,
          `machineid="${Flatcar.machineId}"`,
          `bootid="${Flatcar.bootId}"`,
          `<ping active="1"/>`,
          `<updatecheck/>`,
          `<event eventtype="3" eventresult="2" previousversion="3760.2.0"/>`
        ]
      ) {
        expect(received!.body).toContain(attribute)
      }
    }))

  it.scopedLive("decodes the shared update_engine responses", () =>
    Effect.gen(function*() {
      const fixtureAppId = "{87efface-864d-49a5-9bb3-4b050a7c227a}"
      const check = (fixture: string) =>
        Effect.gen(function*() {
          const server = yield* startServer(() => reply(readFixture(`omaha/update-engine/${fixture}/response.xml`)))
          return yield* withClient(server, () =>
            Effect.flatMap(AppClient.make({ appId: fixtureAppId, version: "ForcedUpdate" }), (app) => app.updateCheck()))
        })
      const update = yield* check("update")
      expect(update).toBeInstanceOf(AppClient.UpdateAvailable)
      if (update._tag !== "UpdateAvailable") return
      expect(update.manifest.version).toBe("9999.0.0")
      expect(update.update.urls.map((url) => url.codebase)).toEqual(["http://kam:8080/static/"])
      expect(update.manifest.packages[0]).toMatchObject({ name: "update.gz", size: 67546213, required: true })
      expect(update.manifest.actions[0]).toMatchObject({
        event: "postinstall",
        sha256: "0VAlQW3RE99SGtSB5R4m08antAHO8XDoBMKDyxQT/Mg=",
        needsAdmin: false
      })
      const none = yield* check("no-update")
      expect(none).toBeInstanceOf(AppClient.NoUpdate)
      expect(none.update.status).toBe("noupdate")
    }))

  it.scopedLive("ping sends a ping and nothing else", () =>
    Effect.gen(function*() {
      const server = yield* okServer
      yield* withClient(server, () =>
        Effect.flatMap(AppClient.make({ appId: "app", version: "1.0.0" }), (app) => app.ping({ installSource: "ondemandupdate" })))
      const request = server.received[0]!.request!
      expect(request.installSource).toBe("ondemandupdate")
      expect(request.apps[0]).toMatchObject({ ping: { active: 1 }, events: [] })
      expect(request.apps[0]!.updateCheck).toBeUndefined()
    }))

  it.scopedLive("refuses duplicate app ids on one Omaha client, until the first app client is closed", () =>
    Effect.gen(function*() {
      const server = yield* okServer
      yield* withClient(server, () =>
        Effect.gen(function*() {
          const first = yield* Scope.make()
          yield* Scope.extend(AppClient.make({ appId: "app", version: "1.0.0" }), first)
          const duplicate = yield* Effect.flip(AppClient.make({ appId: "app", version: "2.0.0" }))
          expect(duplicate).toBeInstanceOf(OmahaClient.DuplicateAppId)
          expect(duplicate.message).toBe("app app already has an app client on this Omaha client")
          expect(AppClient.exitCodeOf(duplicate)).toBe(1)
          // Another app id is fine, and so is the same one once the first client is gone.
          yield* AppClient.make({ appId: "other", version: "1.0.0" })
          yield* Scope.close(first, Exit.void)
          yield* AppClient.make({ appId: "app", version: "2.0.0" })
          // Another Omaha client keeps its own set.
          yield* Effect.scoped(AppClient.make({ appId: "app", version: "1.0.0" })).pipe(
            Effect.provide(clientLayer(server.url))
          )
        }))
    }))

  it.scopedLive("refuses an empty app id, version or track; setters change what is sent", () =>
    Effect.gen(function*() {
      const server = yield* okServer
      yield* withClient(server, () =>
        Effect.gen(function*() {
          for (
            const [options, setting] of [
              [{ appId: "", version: "1.0.0" }, "appId"],
              [{ appId: "a", version: "" }, "version"],
              [{ appId: "a", version: "1.0.0", track: "" }, "track"]
            ] as const
          ) {
            const error = yield* Effect.flip(AppClient.make(options))
            expect(error).toEqual(new AppClient.EmptySetting({ appId: options.appId, setting }))
          }
          const app = yield* AppClient.make({ appId: "a", version: "1.0.0", track: "beta" })
          expect(yield* Effect.flip(app.setVersion(""))).toMatchObject({ _tag: "EmptySetting", setting: "version" })
          expect((yield* Effect.flip(app.setTrack(""))).message).toBe("app a: empty track")
          yield* app.setVersion("1.1.0")
          yield* app.setTrack("stable")
          yield* app.setOem("azure", "2.9")
          yield* app.ping()
          yield* app.setOem("gce")
          yield* app.ping()
        }))
      expect(server.received[0]!.request!.apps[0]).toMatchObject({
        version: "1.1.0",
        track: "stable",
        oem: "azure",
        oemVersion: "2.9"
      })
      // A new OEM does not keep the old one's version.
      expect(server.received[1]!.request!.apps[0]).toMatchObject({ oem: "gce" })
      expect(server.received[1]!.request!.apps[0]!.oemVersion).toBeUndefined()
    }))

  it.scopedLive("events go out in order, one at a time, through a bounded queue", () =>
    Effect.gen(function*() {
      let release: () => void = () => {}
      const gate = new Promise<void>((resolve) => (release = resolve))
      const server = yield* startServer((received) => ({ _tag: "After", ready: gate, then: answerApps(received.request) }))
      yield* withClient(server, () =>
        Effect.gen(function*() {
          const app = yield* AppClient.make({ appId: "app", version: "1.0.0" })
          const events = [
            AppClient.Events.downloadStarted,
            AppClient.Events.downloadFinished,
            AppClient.Events.installed,
            AppClient.Events.complete
          ]
          // One in flight (held by the server), two waiting: the queue is full.
          const sent = [yield* app.event(events[0]!)]
          yield* Effect.promise(() => server.receivedCount(1))
          sent.push(yield* app.event(events[1]!), yield* app.event(events[2]!))
          const fourth = yield* Effect.fork(app.event(events[3]!))
          for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
          expect(fourth.unsafePoll()).toBeNull()
          expect(server.received.length).toBe(1)
          release()
          sent.push(yield* Fiber.join(fourth))
          yield* Effect.all(sent)
          expect(server.events()).toEqual(events)
        }), { eventQueueCapacity: 2 })
    }))

  it.scopedLive("an event's outcome can be awaited; a failed event sends no error event of its own", () =>
    Effect.gen(function*() {
      const server = yield* startServer(onChecks((received) => answerApps(received.request)))
      const failing = yield* startServer(() => reply("bad request", 400))
      const logs: Array<string> = []
      const logger = Logger.make(({ message }) => void logs.push(String(Array.isArray(message) ? message[0] : message)))
      const ok = yield* withClient(server, () =>
        Effect.gen(function*() {
          const app = yield* AppClient.make({ appId: "app", version: "1.0.0" })
          const delivered = yield* app.event(AppClient.Events.downloadStarted)
          return yield* Effect.either(delivered)
        }))
      expect(ok).toEqual(Either.right(undefined))
      const failed = yield* withClient(failing, () =>
        Effect.gen(function*() {
          const app = yield* AppClient.make({ appId: "app", version: "1.0.0" })
          const delivered = yield* app.event(ExitCode.errorEvent(ExitCode.Code.PayloadHashMismatchError))
          return yield* Effect.flip(delivered)
        })).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      expect(failed).toMatchObject({ _tag: "HttpStatusError", status: 400, attempts: 1 })
      expect(AppClient.exitCodeOf(failed)).toBe(2400)
      expect(failing.received.length).toBe(1)
      expect(logs).toEqual([
        "Omaha event (update complete: error, PayloadHashMismatchError (10)) not delivered: " +
        `Omaha server ${failing.url}/v1/update/ answered HTTP 400 (1 attempt(s))`
      ])
    }))

  it.scopedLive("closing the client interrupts events still waiting, so nobody waits forever", () =>
    Effect.gen(function*() {
      const server = yield* startServer((received) => ({ _tag: "After", ready: new Promise(() => {}), then: answerApps(received.request) }))
      const waiting = yield* withClient(server, () =>
        Effect.gen(function*() {
          const app = yield* AppClient.make({ appId: "app", version: "1.0.0" })
          const first = yield* app.event(AppClient.Events.downloadStarted)
          const second = yield* app.event(AppClient.Events.downloadFinished)
          yield* Effect.promise(() => server.receivedCount(1))
          return [first, second] as const
        }))
      for (const delivery of waiting) {
        const exit = yield* Effect.exit(delivery)
        expect(Exit.isInterrupted(exit)).toBe(true)
      }
    }))

  it("maps every client error to one update_engine exit code", () => {
    const url = "http://x/v1/update/"
    const cases: ReadonlyArray<readonly [AppClient.ClientError, number]> = [
      [new OmahaClient.InvalidServerUrl({ url, reason: "r" }), 1],
      [new OmahaClient.MissingUserId(), 1],
      [new OmahaClient.DuplicateAppId({ appId: "a" }), 1],
      [new AppClient.EmptySetting({ appId: "a", setting: "version" }), 1],
      [new Machine.IdFileMissing({ kind: "machine id", path: "/etc/machine-id" }), 1],
      [new Machine.IdFileUnreadable({ kind: "boot id", path: "/p", reason: "r" }), 1],
      [new Machine.IdFileMalformed({ kind: "machine id", path: "/p", content: "x", expected: "e" }), 1],
      [new OmahaClient.InvalidRequest({ reason: "r" }), 2],
      [new OmahaClient.NetworkError({ url, attempts: 7, reason: "r" }), 2],
      [new OmahaClient.RequestTimeout({ url, attempts: 7, timeoutMillis: 90_000 }), 2],
      [new OmahaClient.HttpStatusError({ url, status: 503, attempts: 7 }), 2503],
      [new OmahaClient.EmptyResponse({ url }), 30],
      [new OmahaClient.MalformedResponse({ url, reason: "r" }), 31],
      [new OmahaClient.ResponseTooLarge({ url, limit: 1 }), 34],
      [new OmahaClient.ResponseInvalid({ url, appId: "a", reason: "r" }), 34],
      [new OmahaClient.AppStatusError({ url, appId: "a", status: "error-unknownApplication" }), 34],
      [new AppClient.UpdateCheckError({ url, appId: "a", status: "error-hash" }), 34]
    ]
    for (const [error, code] of cases) {
      expect(AppClient.exitCodeOf(error), error._tag).toBe(code)
      expect(error.message.length, error._tag).toBeGreaterThan(0)
      expect(error.message, error._tag).not.toContain("\n")
    }
    expect(new Set(cases.map(([error]) => error._tag)).size).toBe(cases.length)
  })

})

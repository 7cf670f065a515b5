import { HttpServer } from "@effect/platform"
import { NodeContext, NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as Http from "node:http"
import { OmahaHandler, Response, Updater, Xml } from "effect-omaha"
import { readFixture } from "../fixtures.js"
import { post, raw, send, startServer } from "./support.js"

const decode = (text: string) => Effect.runSync(Xml.decodeResponse(text))

const manifest = (version: string) =>
  new Response.Manifest({
    version,
    packages: [new Response.Package({ name: "update.gz", hash: "x", size: 10, required: true })],
    actions: [new Response.Action({ event: "postinstall", sha256: "y" })]
  })

interface Seen {
  readonly events: Array<string>
  readonly pings: Array<string>
  /** Every backend call in order, with the client address it was given. */
  readonly calls: Array<string>
}

// A backend scripted per app id: "refused-*" apps are refused with the status
// after the prefix, "update" apps get a two-step update, "boom" dies.
const scripted = (seen: Seen) =>
  Layer.succeed(Updater.Updater, {
    checkApp: (_, app) => {
      if (app.appId === "boom") return Effect.die("backend exploded")
      const refused = /^refused-(.*)$/.exec(app.appId)?.[1]
      return refused === undefined
        ? Effect.void
        : Effect.fail(new Updater.AppRefused({ status: refused as Updater.AppRefused["status"], reason: "scripted" }))
    },
    checkUpdate: (_, app, client) =>
      Effect.suspend(() => {
        seen.calls.push(`check ${app.appId} from ${client.address}`)
        return checkUpdate(app)
      }),
    event: (_, app, event, client) =>
      Effect.sync(() => {
        seen.events.push(`${app.appId}:${event.eventType}/${event.eventResult}`)
        seen.calls.push(`event ${event.eventType}/${event.eventResult} from ${client.address}`)
      }),
    ping: (_, app, client) =>
      Effect.sync(() => {
        seen.pings.push(app.appId)
        seen.calls.push(`ping ${app.appId} from ${client.address}`)
      })
  })

const checkUpdate = (app: { readonly appId: string }): Effect.Effect<Updater.Update | Updater.NoUpdate, Updater.UpdateRefused> =>
      app.appId === "update"
        ? Effect.succeed(
          new Updater.Update({ codebases: ["packages/", "http://mirror.example/p/"], manifests: [manifest("2.0.0"), manifest("3.0.0")] })
        )
        : app.appId === "hash"
        ? Effect.fail(new Updater.UpdateRefused({ status: "error-hash" }))
        : app.appId === "update-boom"
        ? Effect.die("checkUpdate exploded")
        : Effect.succeed(new Updater.NoUpdate({}))

const requestFor = (apps: string, attrs = "") =>
  `<?xml version="1.0" encoding="UTF-8"?><request protocol="3.0"${attrs}>${apps}</request>`

const app = (id: string, inner = `<updatecheck/>`, attrs = "") => `<app appid="${id}" version="1.0.0"${attrs}>${inner}</app>`

const withServer = <A>(
  f: (server: { base: string; seen: Seen }) => Effect.Effect<A, unknown>,
  options: Parameters<typeof startServer>[0] = {}
) =>
  Effect.gen(function*() {
    const seen: Seen = { events: [], pings: [], calls: [] }
    const { base } = yield* startServer(options, scripted(seen))
    return yield* f({ base, seen })
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

const call = <A>(promise: () => Promise<A>) => Effect.promise(promise)

describe("OmahaHandler", () => {
  it.effect("checks a public base URL and puts codebases below it", () =>
    Effect.gen(function*() {
      expect(yield* OmahaHandler.parseBaseUrl("https://updates.example/omaha?x#y")).toBe("https://updates.example/omaha/")
      for (const bad of ["updates.example", "ftp://updates.example/", "/relative", "http://"]) {
        const error = yield* Effect.flip(OmahaHandler.parseBaseUrl(bad))
        expect(error._tag, bad).toBe("InvalidBaseUrl")
      }
    }))

  it.live("answers every app, ping and event, with HTTP 200 when any app is ok", () =>
    withServer(({ base, seen }) =>
      Effect.gen(function*() {
        const reply = yield* call(() =>
          post(
            base,
            requestFor(
              app("a", `<ping active="1"/><updatecheck/><event eventtype="3" eventresult="2"/><event eventtype="14" eventresult="1"/>`) +
                app("refused-error-unknownApplication", `<ping/><event eventtype="3" eventresult="1"/>`) +
                app("hash")
            )
          )
        )
        expect(reply.status).toBe(200)
        expect(reply.headers["content-type"]).toBe("text/xml; charset=utf-8")
        expect(reply.text.startsWith(`<?xml version="1.0" encoding="UTF-8"?>\n<response protocol="3.0" server="effect-omaha">`))
          .toBe(true)
        const response = decode(reply.text)
        expect(response.apps.map((a) => [a.appId, a.status])).toEqual([
          ["a", "ok"],
          ["refused-error-unknownApplication", "error-unknownApplication"],
          ["hash", "ok"]
        ])
        const [a, refused, hash] = response.apps
        expect(a!.ping).toStrictEqual(Response.ok)
        expect(a!.events).toStrictEqual([Response.ok, Response.ok])
        expect(a!.updateCheck).toStrictEqual(new Response.UpdateResponse({ status: "noupdate" }))
        expect(refused!.ping).toBeUndefined()
        expect(refused!.events).toEqual([])
        expect(hash!.updateCheck!.status).toBe("error-hash")
        expect(seen.events).toEqual(["a:3/2", "a:14/1"])
        expect(seen.pings).toEqual(["a"])
      })
    ))

  it.live("uses 400 when no app is ok, 500 when the first error is internal", () =>
    withServer(({ base }) =>
      Effect.gen(function*() {
        const unknown = yield* call(() =>
          post(base, requestFor(app("refused-error-unknownApplication") + app("refused-error-internal")))
        )
        expect(unknown.status).toBe(400)
        const internal = yield* call(() =>
          post(base, requestFor(app("refused-error-internal") + app("refused-error-unknownApplication")))
        )
        expect(internal.status).toBe(500)
        const empty = yield* call(() => post(base, requestFor("")))
        expect(empty.status).toBe(400)
        expect(decode(empty.text).apps).toEqual([])
      })
    ))

  it.live("tells `observe` the status and duration of each request it answers", () => {
    const observed: Array<[number, number]> = []
    return withServer(({ base }) =>
      Effect.gen(function*() {
        yield* call(() => post(base, requestFor(app("a"))))
        yield* call(() => post(base, requestFor(app("refused-error-unknownApplication"))))
        yield* call(() => post(base, "<not xml"))
        expect(observed.map(([status]) => status)).toEqual([200, 400, 400])
        for (const [, seconds] of observed) expect(seconds).toBeGreaterThan(0)
        for (const [, seconds] of observed) expect(seconds).toBeLessThan(10)
      }), { observe: (status, seconds) => observed.push([status, seconds]) })
  })

  it.live("answers error-internal when the backend dies, and keeps serving", () =>
    withServer(({ base }) =>
      Effect.gen(function*() {
        const reply = yield* call(() => post(base, requestFor(app("boom") + app("update-boom"))))
        // The second app is ok (only its update check failed), so HTTP says 200.
        expect(reply.status).toBe(200)
        const [boom, updateBoom] = decode(reply.text).apps
        expect(boom!.status).toBe("error-internal")
        expect(updateBoom!.status).toBe("ok")
        expect(updateBoom!.updateCheck!.status).toBe("error-internal")
        const allDead = yield* call(() => post(base, requestFor(app("boom"))))
        expect(allDead.status).toBe(500)
        expect((yield* call(() => post(base, requestFor(app("a"))))).status).toBe(200)
      })
    ))

  it.live("sends every manifest only to apps that accept several", () =>
    withServer(({ base }) =>
      Effect.gen(function*() {
        const single = decode((yield* call(() => post(base, requestFor(app("update"))))).text)
        expect(single.apps[0]!.updateCheck!.manifests.map((m) => m.version)).toEqual(["2.0.0"])
        const multi = decode(
          (yield* call(() => post(base, requestFor(app("update", `<updatecheck/>`, ` multi_manifest_ok="true"`))))).text
        )
        expect(multi.apps[0]!.updateCheck!.manifests.map((m) => m.version)).toEqual(["2.0.0", "3.0.0"])
      })
    ))

  it.live("makes codebases absolute from the Host header, never trusting X-Forwarded-* from strangers", () =>
    withServer(({ base }) =>
      Effect.gen(function*() {
        const reply = yield* call(() =>
          post(base, requestFor(app("update")), {
            host: "updates.example:8080",
            "x-forwarded-proto": "https",
            "x-forwarded-host": "evil.example"
          })
        )
        expect(decode(reply.text).apps[0]!.updateCheck!.urls.map((u) => u.codebase)).toEqual([
          "http://updates.example:8080/packages/",
          "http://mirror.example/p/"
        ])
        const badHost = yield* call(() => post(base, requestFor(app("update")), { host: "a b\"<c" }))
        expect(badHost.status).toBe(400)
        expect(badHost.text).toBe("missing or invalid Host header: cannot tell clients where the packages are\n")
      })
    ))

  it.live("believes X-Forwarded-Proto and -Host from trusted proxies", () =>
    withServer(
      ({ base }) =>
        Effect.gen(function*() {
          const reply = yield* call(() =>
            post(base, requestFor(app("update")), {
              host: "internal:8000",
              "x-forwarded-proto": "https",
              "x-forwarded-host": "updates.example, proxy.internal"
            })
          )
          expect(decode(reply.text).apps[0]!.updateCheck!.urls[0]!.codebase).toBe("https://updates.example/packages/")
        }),
      { trustedProxies: ["127.0.0.1", "::ffff:127.0.0.1"] }
    ))

  it.live("reports events and the ping before the check, with the client's address", () =>
    withServer(({ base, seen }) =>
      Effect.gen(function*() {
        yield* call(() =>
          post(base, requestFor(app("a", `<updatecheck/><ping active="1"/><event eventtype="3" eventresult="2"/><event eventtype="13" eventresult="1"/>`)))
        )
        expect(seen.calls).toEqual([
          "event 3/2 from 127.0.0.1",
          "event 13/1 from 127.0.0.1",
          "ping a from 127.0.0.1",
          "check a from 127.0.0.1"
        ])
      })
    ))

  it.live("takes the client's address from X-Forwarded-For only behind a trusted proxy", () =>
    Effect.gen(function*() {
      const addresses = (trustedProxies: ReadonlyArray<string>, forwarded: string) =>
        withServer(({ base, seen }) =>
          Effect.gen(function*() {
            yield* call(() => post(base, requestFor(app("a")), { "x-forwarded-for": forwarded }))
            return seen.calls.map((line) => line.replace(/^.* from /, ""))
          }), { trustedProxies })
      const proxies = ["127.0.0.1", "::ffff:127.0.0.1"]
      // The nearest address that is not one of our proxies is the client.
      expect(yield* addresses(proxies, "198.51.100.7, 203.0.113.9")).toEqual(["203.0.113.9"])
      expect(yield* addresses([...proxies, "203.0.113.9"], "198.51.100.7, 203.0.113.9")).toEqual(["198.51.100.7"])
      // A hop that is not an address stops the walk at the proxy itself.
      expect(yield* addresses(proxies, "198.51.100.7, not-an-ip")).toEqual(["127.0.0.1"])
      // An untrusted peer cannot claim another address.
      expect(yield* addresses([], "198.51.100.7")).toEqual(["127.0.0.1"])
    }))

  it.live("resolves codebases against a configured public base URL", () =>
    withServer(
      ({ base }) =>
        Effect.gen(function*() {
          const reply = yield* call(() => post(base, requestFor(app("update")), { host: "ignored:1" }))
          expect(decode(reply.text).apps[0]!.updateCheck!.urls[0]!.codebase).toBe(
            "https://updates.example/omaha/packages/"
          )
        }),
      { publicBaseUrl: "https://updates.example/omaha", serverName: "test-server" }
    ))

  it.live("tells the client's day from the server clock", () =>
    withServer(({ base }) =>
      Effect.gen(function*() {
        const before = Response.dayStartAt(new Date())
        const response = decode((yield* call(() => post(base, requestFor(app("a"))))).text)
        const after = Response.dayStartAt(new Date())
        const day = response.dayStart!
        expect([before.elapsedDays, after.elapsedDays]).toContain(day.elapsedDays)
        expect(day.elapsedSeconds!).toBeGreaterThanOrEqual(Math.min(before.elapsedSeconds!, after.elapsedSeconds!))
        expect(day.elapsedSeconds!).toBeLessThanOrEqual(Math.max(before.elapsedSeconds!, after.elapsedSeconds!))
      })
    ))

  it.live("refuses other protocols with error-unsupportedProtocol and records nothing", () =>
    withServer(({ base, seen }) =>
      Effect.gen(function*() {
        const reply = yield* call(() =>
          post(
            base,
            `<request protocol="2.0">${app("a", `<updatecheck/><ping/><event eventtype="3" eventresult="1"/>`)}</request>`
          )
        )
        expect(reply.status).toBe(400)
        const [a] = decode(reply.text).apps
        expect(a!.updateCheck!.status).toBe("error-unsupportedProtocol")
        expect(a!.ping).toBeUndefined()
        expect(seen.events).toEqual([])
        expect(seen.pings).toEqual([])
      })
    ))

  it.live("takes POST only, XML content types only", () =>
    withServer(({ base }) =>
      Effect.gen(function*() {
        const get = yield* call(() => send(base, { path: "/v1/update/" }))
        expect(get.status).toBe(405)
        expect(get.headers["allow"]).toBe("POST")
        const noSlash = yield* call(() => send(base, { method: "POST", path: "/v1/update", body: requestFor(app("a")) }))
        expect(noSlash.status).toBe(200)
        const body = requestFor(app("a"))
        for (const type of ["application/xml", "text/xml; charset=UTF-8", "text/xml;charset=\"utf-8\""]) {
          expect((yield* call(() => post(base, body, { "content-type": type }))).status, type).toBe(200)
        }
        for (const type of ["application/json", "text/plain", "text/xml; charset=iso-8859-1"]) {
          const reply = yield* call(() => post(base, body, { "content-type": type }))
          expect(reply.status, type).toBe(400)
          expect(reply.text).toMatch(/^unsupported content type/)
        }
      })
    ))

  it.live("refuses a body over 1 MiB with 413 before reading it", () =>
    withServer(({ base }) =>
      Effect.gen(function*() {
        // Only the headers are sent: the answer must not wait for the body.
        const answer = yield* call(() =>
          raw(
            base,
            "POST /v1/update/ HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 2097152\r\n\r\n"
          )
        )
        expect(answer.toString("latin1")).toMatch(/^HTTP\/1\.1 413 /)
        const chunked = Buffer.concat([
          Buffer.from("POST /v1/update/ HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n"),
          Buffer.from(`200000\r\n${"x".repeat(0x200000)}\r\n0\r\n\r\n`)
        ])
        // Without a Content-Length the limit applies while reading; the
        // connection is closed, and the 413 may be lost to the reset.
        const streamed = yield* call(() => raw(base, chunked))
        expect(streamed.toString("latin1")).toMatch(/^$|^HTTP\/1\.1 413 /)
        expect((yield* call(() => post(base, requestFor(app("a"))))).status).toBe(200)
      })
    ))

  it.live("answers malformed documents with 400 and the reason", () =>
    withServer(({ base }) =>
      Effect.gen(function*() {
        const reply = yield* call(() => post(base, readFixture("omaha/malformed/response-quote-in-name.xml")))
        expect(reply.status).toBe(400)
        expect(reply.text).toBe("bad Omaha request: malformed XML at line 2, column 1: invalid element name \"response\\\"\"\n")
        const wrongRoot = yield* call(() => post(base, readFixture("omaha/update-engine/update/response.xml")))
        expect(wrongRoot.status).toBe(400)
        expect(wrongRoot.text).toMatch(/expected a <request> element/)
      })
    ))

  it.live("answers what go-omaha answers: unreadable values read as absent, an app without appid skipped, and logs why", () =>
    Effect.gen(function*() {
      const seen: Seen = { events: [], pings: [], calls: [] }
      const { base, logs } = yield* startServer({}, scripted(seen))
      const reply = yield* call(() =>
        post(
          base,
          requestFor(
            `<app version="1.0.0"><updatecheck/></app>` +
              app("a", `<ping active=" 1 "/><updatecheck/><event eventtype="3" eventresult="x"/>`, ` installage="soon"`),
            ` ismachine="2"`
          )
        )
      )
      expect(reply.status).toBe(200)
      const response = decode(reply.text)
      expect(response.apps.map((a) => [a.appId, a.status, a.updateCheck?.status])).toEqual([["a", "ok", "noupdate"]])
      expect(response.apps[0]!.events).toStrictEqual([Response.ok])
      expect(seen.events).toEqual(["a:3/undefined"])
      expect(seen.pings).toEqual(["a"])
      const line = logs.lines.find((l) => l.message === "omaha")!
      expect(line.annotations["status"]).toBe(200)
      expect(line.annotations["warnings"]).toEqual([
        `request/ismachine: expected a boolean, got "2"; read as absent`,
        `request/app[2]/installage: expected an integer, got "soon"; read as absent`,
        `request/app[2]/event[1]/eventresult: expected an integer, got "x"; read as absent`,
        "request/app[1]/appid: is missing; <app> skipped"
      ])
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))

  it.live("answers the same as an HttpApp in a plain @effect/platform server", () =>
    Effect.gen(function*() {
      const seen: Seen = { events: [], pings: [], calls: [] }
      const listening = NodeHttpServer.layer(() => Http.createServer(), { host: "127.0.0.1", port: 0 })
      const served = Layer.unwrapEffect(Effect.map(OmahaHandler.make(), (app) => HttpServer.serve(app))).pipe(
        Layer.provide(scripted(seen)),
        Layer.provideMerge(listening)
      )
      const context = yield* Layer.build(served)
      const address = Context.get(context, HttpServer.HttpServer).address
      if (address._tag !== "TcpAddress") return yield* Effect.die("expected a TCP address")
      const alone = `http://127.0.0.1:${address.port}`
      const { base } = yield* startServer({}, scripted(seen))
      const body = requestFor(app("update", `<updatecheck/><ping r="1"/>`) + app("refused-error-unknownApplication"))
      const withoutDay = (text: string) => text.replace(/<daystart [^>]*>/, "")
      const viaApp = yield* call(() => post(alone, body, { host: "updates.example" }))
      const viaServer = yield* call(() => post(base, body, { host: "updates.example" }))
      expect(viaApp.status).toBe(200)
      expect(viaApp.headers["content-type"]).toBe(OmahaHandler.xmlContentType)
      expect(withoutDay(viaApp.text)).toBe(withoutDay(viaServer.text))
      expect(seen.pings).toEqual(["update", "update"])

      const get = yield* call(() => send(alone, { path: "/v1/update/" }))
      expect([get.status, get.headers["allow"]]).toEqual([405, "POST"])
      const tooBig = yield* call(() =>
        raw(alone, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 2097152\r\n\r\n")
      )
      expect(tooBig.toString("latin1")).toMatch(/^HTTP\/1\.1 413 /)
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))
})


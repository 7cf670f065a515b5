/**
 * In-process cost of one update check by stage, in µs: what serve-package's
 * update endpoint does for update_engine's request, without the network.
 * - decode: the request's bytes to the protocol classes (`Xml` hot path);
 * - encode: the response document, as the endpoint writes it (kept parts reused);
 * - log line: formatting the request's logfmt line;
 * - whole answer: `Endpoint.answer` run as the server runs it, one fiber per
 *   request, log line included (written to a sink);
 * - the rest (backend calls, response construction, Effect steps) is the
 *   whole answer less the three stages.
 * Each stage is timed over many repetitions after a warm-up, in interleaved
 * rounds, and summarised by the median.
 */
import { Effect, Either, FiberId, HashMap, Layer, List, Logger, LogLevel, Runtime } from "effect"
import * as Fs from "node:fs"
import { logfmt } from "../../src/cli/internal/logLines.js"
import { Package, Response, TrivialUpdater, Version, Xml } from "../../src/index.js"
import * as Codec from "../../src/protocol/internal/codec.js"
import * as OmahaHandler from "../../src/server/OmahaHandler.js"

/** update_engine's request for an app at `version`, as the server bench posts it. */
export const updateEngineRequest = (version: string): string =>
  Fs.readFileSync(new URL("../../fixtures/omaha/update-engine/update/request.xml", import.meta.url), "utf8")
    .replace(`version="ForcedUpdate"`, `version="${version}"`)

/** The payload version the bench serves: 3815.2.0 is offered it, 3815.2.1 is not. */
export const packageVersion = "3815.2.1"

const facts = new Package.PackageFacts({
  size: 67546213,
  sha1: "+LXvjiaPkeYDLHoNKlf9qbJwvnk=",
  sha256: "0VAlQW3RE99SGtSB5R4m08antAHO8XDoBMKDyxQT/Mg="
})

const exchange: OmahaHandler.Exchange = {
  method: "POST",
  headers: { host: "127.0.0.1:8000", "content-type": "text/xml" },
  remoteAddress: "127.0.0.1",
  encrypted: false
}

const timeEach = (f: () => unknown, n: number): number => {
  const started = performance.now()
  for (let i = 0; i < n; i++) f()
  return ((performance.now() - started) * 1000) / n
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** µs per request by stage, for update_engine's request with (`update`) or without an update offered. */
export const measureStages = async (update: boolean, rounds = 5): Promise<Record<string, number>> => {
  const body = Buffer.from(updateEngineRequest(update ? "3815.2.0" : packageVersion))
  const version = Effect.runSync(Version.parseSemver(packageVersion))
  let sink = 0
  const logger = Logger.make((options) => void (sink += logfmt(options).length))
  const layer = TrivialUpdater.layer({ name: "update.gz", version, facts }).pipe(
    Layer.merge(Logger.replace(Logger.defaultLogger, logger))
  )
  const runtime = await Effect.runPromise(Effect.scoped(Layer.toRuntime(layer)))
  const endpoint = await Runtime.runPromise(runtime)(OmahaHandler.makeEndpoint({}))
  const run = Runtime.runCallback(runtime)
  let lastBody = ""
  const answerOnce = () =>
    new Promise<void>((resolve) =>
      run(endpoint.answer(exchange, body), {
        onExit: (exit) => {
          if (exit._tag === "Success") lastBody = exit.value.body
          resolve()
        }
      })
    )
  // The whole answer, 16 requests in flight as under load.
  const answers = async (n: number) => {
    const started = performance.now()
    for (let i = 0; i < n; i += 16) await Promise.all(Array.from({ length: 16 }, answerOnce))
    return ((performance.now() - started) * 1000) / n
  }
  await answers(4000)
  const response = Either.getOrThrow(Codec.response.decode(lastBody, Xml.defaultLimits))
  if (update !== (response.apps[0]?.updateCheck?.status === "ok")) throw new Error(`unexpected answer: ${lastBody}`)
  // The response as the endpoint builds it: its update check and day start are the kept instances.
  const request = Either.getOrThrow(Codec.request.decode(body, Xml.defaultLimits))
  const logOptions: Logger.Logger.Options<unknown> = {
    fiberId: FiberId.make(1, 0),
    logLevel: LogLevel.Info,
    message: ["omaha"],
    cause: { _tag: "Empty" } as never,
    context: undefined as never,
    spans: List.empty(),
    annotations: HashMap.make(
      ["status", 200],
      ["protocol", "3.0"],
      ["apps", request.apps.map((app) => ({
        appid: app.appId,
        version: app.version,
        track: app.track,
        machineid: app.machineId,
        answer: update ? "update to 3815.2.1" : "noupdate: 3815.2.1 is not older than 3815.2.1",
        events: ["update complete: success, reboot"]
      }))]
    ),
    date: new Date()
  }
  const kept = Response.make({ server: "effect-omaha", dayStart: response.dayStart!, apps: response.apps })
  const samples: Record<string, Array<number>> = { decode: [], encode: [], log: [], whole: [] }
  for (let round = 0; round < rounds; round++) {
    samples["decode"]!.push(timeEach(() => Codec.request.read(body, Xml.defaultLimits), 20_000))
    samples["encode"]!.push(timeEach(() => Codec.response.encode(kept), 20_000))
    samples["log"]!.push(timeEach(() => logfmt(logOptions), 20_000))
    samples["whole"]!.push(await answers(20_000))
  }
  if (sink === 0) throw new Error("no log line was written")
  const decode = median(samples["decode"]!)
  const encode = median(samples["encode"]!)
  const log = median(samples["log"]!)
  const whole = median(samples["whole"]!)
  return {
    "decode": decode,
    "encode": encode,
    "log line": log,
    "backend, response and Effect": whole - decode - encode - log,
    "whole answer": whole
  }
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/.*\//, ""))) {
  for (const update of [false, true]) {
    const stages = await measureStages(update)
    console.log(`${update ? "update offered" : "no update"}: ` + Object.entries(stages).map(([k, v]) => `${k} ${v.toFixed(1)} µs`).join(", "))
  }
}

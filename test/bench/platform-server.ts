// A second baseline for `npm run bench:server`: the HTTP stack serve-package
// is built on (@effect/platform's HttpServer on Node), reading each POST body
// and answering with the same fixed XML, so the report can tell the stack's
// cost from the Omaha handler's. Usage: tsx platform-server.ts <response.xml>
import { HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import * as Fs from "node:fs"
import * as Http from "node:http"

const body = new Uint8Array(Fs.readFileSync(process.argv[2]!))

const app = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  yield* request.arrayBuffer
  return HttpServerResponse.uint8Array(body, { contentType: "text/xml; charset=utf-8" })
}).pipe(Effect.orDie)

const server = NodeHttpServer.layer(() => Http.createServer(), { host: "127.0.0.1", port: 0 })
Effect.gen(function*() {
  const address = (yield* HttpServer.HttpServer).address
  if (address._tag === "TcpAddress") process.stdout.write(`http://127.0.0.1:${address.port}/\n`)
  return yield* Effect.never
}).pipe(Effect.provide(Layer.merge(HttpServer.serve(app).pipe(Layer.provideMerge(server)), server)), NodeRuntime.runMain)

// A second baseline for `npm run bench:server`: what serve-package's update
// endpoint runs on (node:http, the body read whole, one Effect fiber per
// request), answering the same fixed XML, so the report can tell the cost of
// running Effect per request from the cost of the Omaha work.
// Usage: node fiber-server.mjs <response.xml>
import { Effect, Runtime } from "effect"
import * as Fs from "node:fs"
import * as Http from "node:http"

const body = Fs.readFileSync(process.argv[2])
const run = Runtime.runCallback(Runtime.defaultRuntime)

const server = Http.createServer((req, res) => {
  const chunks = []
  req.on("data", (chunk) => chunks.push(chunk))
  req.on("end", () => {
    // The body is gathered whole, as serve-package gathers a request, then dropped.
    Buffer.concat(chunks)
    run(Effect.succeed(body), {
      onExit: (exit) => {
        res.writeHead(200, { "content-type": "text/xml; charset=utf-8", "content-length": exit.value.length })
        res.end(exit.value)
      }
    })
  })
})
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`http://127.0.0.1:${server.address().port}/\n`)
})
process.on("SIGTERM", () => process.exit(0))

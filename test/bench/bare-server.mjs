// The baseline for `npm run bench:server`: a bare node:http server that
// answers every POST with a fixed XML body and streams the payload on GET
// with 1 MiB reads. Usage: node bare-server.mjs <payload> <response.xml>
import * as Fs from "node:fs"
import * as Http from "node:http"

const [payload, responseFile] = process.argv.slice(2)
const body = Fs.readFileSync(responseFile)
const size = Fs.statSync(payload).size

const server = Http.createServer((req, res) => {
  if (req.method === "POST") {
    req.resume()
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/xml; charset=utf-8", "content-length": body.length })
      res.end(body)
    })
    return
  }
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": size })
  Fs.createReadStream(payload, { highWaterMark: 1024 * 1024 }).pipe(res)
})
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`http://127.0.0.1:${server.address().port}/\n`)
})
process.on("SIGTERM", () => process.exit(0))

/**
 * serve-package under bad input: more than 10,000 requests that are
 * malformed or hostile by construction (truncated and corrupted update_engine
 * captures, entity tricks, wrong methods and content types, oversized
 * bodies), all of which must get a 4xx answer, with the process still up
 * and serving a good request afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"
import { readFixture } from "../fixtures.js"
import { post, raw } from "../server/support.js"
import { type Running, start, waitFor } from "./process.js"

interface Hostile {
  readonly family: string
  readonly method: string
  readonly headers: Record<string, string>
  readonly body: Buffer
}

const xml = { "content-type": "text/xml" }
const documents = [
  readFixture("omaha/update-engine/update/request.xml").replace(`"ForcedUpdate"`, `"3815.2.0"`),
  readFixture("omaha/update-engine/no-update/request.xml"),
  readFixture("omaha/request.xml"),
  readFixture("omaha/golden/new-request.xml")
]

// A small deterministic generator, so a failure names a reproducible case.
const random = (seed: number) => () => {
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
}

const attributeValueSpans = (doc: string): Array<[number, number]> => {
  const spans: Array<[number, number]> = []
  for (const m of doc.matchAll(/="([^"]*)"/g)) spans.push([m.index! + 2, m.index! + 2 + m[1]!.length])
  return spans
}

const hostileRequests = (): Array<Hostile> => {
  const next = random(20261123)
  const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(next() * xs.length)]!
  const out: Array<Hostile> = []
  const add = (family: string, body: string | Buffer, headers: Record<string, string> = xml, method = "POST") =>
    out.push({ family, method, headers, body: typeof body === "string" ? Buffer.from(body) : body })

  for (const doc of documents) {
    const end = doc.lastIndexOf(">")
    // Every cut before the root closes: a truncated document.
    for (let cut = 0; cut < end; cut++) add("truncated", doc.slice(0, cut))
    const spans = attributeValueSpans(doc)
    for (let i = 0; i < 400; i++) {
      const [from, to] = pick(spans)
      const at = from + Math.floor(next() * (to - from + 1))
      add("lt-in-attribute", doc.slice(0, at) + "<" + doc.slice(at))
      add("bare-ampersand", doc.slice(0, at) + "& " + doc.slice(at))
      add("undeclared-entity", doc.slice(0, at) + "&xxe;" + doc.slice(at))
      add("control-character", doc.slice(0, at) + String.fromCharCode(1 + Math.floor(next() * 8)) + doc.slice(at))
      const bytes = Buffer.from(doc)
      const byteAt = Math.floor(next() * bytes.length)
      add("invalid-utf8", Buffer.concat([bytes.subarray(0, byteAt), Buffer.from([0xff, 0xfe]), bytes.subarray(byteAt)]))
    }
    const closings = [...doc.matchAll(/<\/(app|request|os|event|ping|updatecheck)>/g)]
    for (const m of closings) add("missing-closing-tag", doc.slice(0, m.index!) + doc.slice(m.index! + m[0].length))
    for (const m of closings) add("mismatched-closing-tag", doc.slice(0, m.index!) + "</bogus>" + doc.slice(m.index! + m[0].length))
    add("wrong-root", doc.replace("<request", "<response").replace("</request>", "</response>"))
    add("other-protocol", doc.replace(`protocol="3.0"`, `protocol="2.0"`))
    add("duplicate-attribute", doc.replace(`protocol="3.0"`, `protocol="3.0" protocol="3.0"`))
    add("two-roots", doc + doc.slice(doc.indexOf("<request")))
    add("text-after-root", doc + "trailing")
    // An event's type cannot be done without; other numbers and booleans are
    // read as absent (see tolerableRequests).
    for (const bad of ["abc", "1.5", "", "0x1f", "1e9", "-", "99999999999999999999"]) {
      add("non-numeric-number", doc.replace("</request>", `<app appid="n"><event eventtype="${bad}"/></app></request>`))
    }
  }

  const entityTricks = [
    `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><request protocol="3.0"><app appid="&c;"/></request>`,
    `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><request protocol="3.0"><app appid="&xxe;"/></request>`,
    `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x.dtd"> %p;]><request protocol="3.0"/>`,
    `<!DOCTYPE request SYSTEM "http://127.0.0.1:1/omaha.dtd"><request protocol="3.0"/>`,
    `<request protocol="3.0"><!ENTITY x "y"><app appid="&x;"/></request>`,
    `<request protocol="3.0"><!ELEMENT app ANY><app appid="a"/></request>`,
    `<request protocol="3.0"><app appid="&#0;"/></request>`,
    `<request protocol="3.0"><app appid="&#xD800;"/></request>`,
    `<request protocol="3.0"><app appid="&#1114112;"/></request>`
  ]
  for (const trick of entityTricks) {
    for (let i = 0; i < 40; i++) add("entity-trick", trick.replace("<request", `${" ".repeat(i % 3)}<request`))
  }
  for (const depth of [33, 100, 1000, 50_000]) {
    add("deep-nesting", `<request protocol="3.0">${"<app>".repeat(depth)}${"</app>".repeat(depth)}</request>`)
  }
  add("many-elements", `<request protocol="3.0">${`<app appid="a"/>`.repeat(20_000)}</request>`)
  add("empty-body", "")
  add("not-xml", "{\"request\": {\"protocol\": \"3.0\"}}")

  const good = documents[0]!
  for (const method of ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE"]) {
    for (let i = 0; i < 20; i++) add("wrong-method", method === "GET" || method === "HEAD" ? "" : good, xml, method)
  }
  for (const type of ["application/json", "text/html", "text/plain", "text/xml; charset=iso-8859-1", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "text/xml; charset=utf-16"]) {
    for (let i = 0; i < 20; i++) add("wrong-content-type", good, { "content-type": type })
  }
  return out
}

// Values that cost nothing but themselves: each is read as absent, and the
// request answered (go-omaha answers them too, or refuses only some).
const tolerableRequests = (): Array<Hostile> => {
  const out: Array<Hostile> = []
  const numericAttributes = [
    (v: string) => `<app appid="n" installage="${v}"/>`,
    (v: string) => `<app appid="n"><event eventtype="3" eventresult="${v}"/></app>`,
    (v: string) => `<app appid="n"><event eventtype="3" errorcode="${v}"/></app>`,
    (v: string) => `<app appid="n"><ping active="${v}"/></app>`,
    (v: string) => `<app appid="n"><ping r="${v}"/></app>`
  ]
  for (const doc of documents) {
    for (const app of numericAttributes) {
      for (const bad of ["abc", "1.5", "", "0x1f", "1e9", "-", "99999999999999999999"]) {
        out.push({ family: "non-numeric-number", method: "POST", headers: xml, body: Buffer.from(doc.replace("</request>", app(bad) + "</request>")) })
      }
    }
    for (const bad of ["maybe", "yes", "2", ""]) {
      const body = Buffer.from(doc.replace(/ ismachine="[^"]*"/, "").replace(`protocol="3.0"`, `protocol="3.0" ismachine="${bad}"`))
      out.push({ family: "bad-boolean", method: "POST", headers: xml, body })
    }
  }
  return out
}

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-omaha-hostile-"))
const payloadPath = Path.join(dir, "update.gz")
Fs.writeFileSync(payloadPath, Crypto.randomBytes(4096))

let server: Running
let base: string

beforeAll(async () => {
  server = start("serve-package", ["--package-file", payloadPath, "--package-version", "3815.2.1", "--listen-address", "127.0.0.1:0"])
  await waitFor(server, () => server.stdout().includes("SERVER="))
  base = new URL("/", /^SERVER=(\S+)$/m.exec(server.stdout())![1]!).href
})

afterAll(async () => {
  server.child.kill("SIGTERM")
  await server.exited
  Fs.rmSync(dir, { recursive: true, force: true })
})

const agent = new Http.Agent({ keepAlive: true, maxSockets: 16 })

const send = (request: Hostile) =>
  new Promise<number>((resolve, reject) => {
    const req = Http.request(new URL("/v1/update/", base), {
      method: request.method,
      headers: request.method === "GET" || request.method === "HEAD" ? {} : { ...request.headers, "content-length": String(request.body.length) },
      agent
    }, (res) => {
      res.resume()
      res.on("end", () => resolve(res.statusCode ?? 0))
      res.on("error", reject)
    })
    req.on("error", reject)
    if (request.method !== "GET" && request.method !== "HEAD") req.write(request.body)
    req.end()
  })

describe("serve-package under hostile input", () => {
  it("answers more than 10,000 malformed or hostile requests with 4xx only, and keeps serving", async () => {
    const requests = hostileRequests()
    expect(requests.length).toBeGreaterThanOrEqual(10_000)
    const statuses = new Array<number>(requests.length)
    let nextIndex = 0
    const worker = async () => {
      while (nextIndex < requests.length) {
        const i = nextIndex++
        statuses[i] = await send(requests[i]!)
      }
    }
    await Promise.all(Array.from({ length: 16 }, worker))
    const wrong = requests.flatMap((r, i) => (statuses[i]! >= 400 && statuses[i]! < 500 ? [] : [`${r.family}: ${statuses[i]}`]))
    expect(wrong.slice(0, 10)).toEqual([])
    const tolerable = tolerableRequests()
    const answered = await Promise.all(tolerable.map(send))
    expect(tolerable.flatMap((r, i) => (answered[i] === 200 ? [] : [`${r.family}: ${answered[i]}`])).slice(0, 10)).toEqual([])
    // Bodies announced over 1 MiB are refused before they are read.
    for (let i = 0; i < 20; i++) {
      const answer = await raw(base, `POST /v1/update/ HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: ${2 ** 20 + 1 + i * 977}\r\n\r\n<request`)
      expect(answer.toString("latin1")).toMatch(/^HTTP\/1\.1 413 /)
    }
    expect(server.child.exitCode).toBeNull()
    const good = await post(base, documents[0]!)
    expect(good.status).toBe(200)
    expect(good.text).toContain(`<updatecheck status="ok">`)
    expect(server.stderr()).not.toMatch(/level=(ERROR|FATAL)/)
    agent.destroy()
  }, 120_000)
})

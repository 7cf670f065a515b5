/**
 * Codec throughput: documents per second for decoding and encoding the
 * update_engine request and a 4-app response, next to fast-xml-parser's bare
 * parse of the same text in the same run (the cost of hardening and Schema).
 */
import { Effect } from "effect"
import { XMLParser } from "fast-xml-parser"
import * as Fs from "node:fs"
import { Response, Xml } from "../../src/index.js"
import { compareRates, formatRate, printTable } from "./measure.js"

const fixture = (name: string) => Fs.readFileSync(new URL(`../../fixtures/omaha/${name}`, import.meta.url), "utf8")

const fourApps = Response.make({
  server: "effect-omaha",
  dayStart: new Response.DayStart({ elapsedSeconds: 49008, elapsedDays: 7266 }),
  apps: ["{e96281a6-d1af-4bde-9a0a-97b76e56dc57}", "{a}", "{b}", "{c}"].map((appId, i) =>
    new Response.AppResponse({
      appId,
      status: "ok",
      ping: Response.ok,
      events: [Response.ok],
      updateCheck: new Response.UpdateResponse({
        status: "ok",
        urls: [new Response.Url({ codebase: `http://127.0.0.1:8000/packages/` })],
        manifests: [
          new Response.Manifest({
            version: `3815.2.${i}`,
            packages: [
              new Response.Package({
                name: "update.gz",
                hash: "+LXvjiaPkeYDLHoNKlf9qbJwvnk=",
                hashSha256: "0VAlQW3RE99SGtSB5R4m08antAHO8XDoBMKDyxQT/Mg=",
                size: 67546213,
                required: true
              })
            ],
            actions: [
              new Response.Action({
                event: "postinstall",
                sha256: "0VAlQW3RE99SGtSB5R4m08antAHO8XDoBMKDyxQT/Mg=",
                disablePayloadBackoff: true
              })
            ]
          })
        ]
      })
    })
  )
})

const requestText = fixture("update-engine/update/request.xml")
const request = Effect.runSync(Xml.decodeRequest(requestText))
const responseText = Effect.runSync(Xml.encodeResponse(fourApps))
const response = Effect.runSync(Xml.decodeResponse(responseText))

const bare = new XMLParser({ ignoreAttributes: false })

const rows: Array<Array<string>> = []
const micros = (rate: number) => (1e6 / rate).toFixed(1)
const measure = (document: string, text: string, decode: () => unknown, encode: () => unknown) => {
  const { decoded, encoded, parse } = compareRates({ parse: () => bare.parse(text), decoded: decode, encoded: encode })
  rows.push([
    document,
    `${text.length} B`,
    formatRate(parse),
    formatRate(decoded),
    micros(decoded),
    (decoded / parse).toFixed(2),
    formatRate(encoded),
    micros(encoded),
    (encoded / parse).toFixed(2)
  ])
}

measure(
  "update_engine request",
  requestText,
  () => Effect.runSync(Xml.decodeRequest(requestText)),
  () => Effect.runSync(Xml.encodeRequest(request))
)
measure(
  "4-app response",
  responseText,
  () => Effect.runSync(Xml.decodeResponse(responseText)),
  () => Effect.runSync(Xml.encodeResponse(response))
)

console.log(
  `Node ${process.version}, fast-xml-parser bare parse as the baseline (docs/s; median of 7 interleaved rounds)\n`
)
printTable(
  ["document", "size", "bare parse", "decode", "µs", "ratio", "encode", "µs", "ratio"],
  rows
)

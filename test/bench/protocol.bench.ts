/**
 * Codec throughput: documents per second for decoding and encoding the
 * update_engine request and a 4-app response, by the fast path (what `Xml`
 * does: the scan builds the document, instances built and written directly)
 * and by the canonical path (fast-xml-parser and the Schema transforms),
 * side by side, next to fast-xml-parser's bare parse of the same text in the
 * same run.
 */
import { Effect } from "effect"
import { XMLParser } from "fast-xml-parser"
import * as Fs from "node:fs"
import { Response, Xml } from "../../src/index.js"
import * as Codec from "../../src/protocol/internal/codec.js"
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
const measure = (
  document: string,
  text: string,
  fns: { decode: () => unknown; decodeCanonical: () => unknown; encode: () => unknown; encodeCanonical: () => unknown }
) => {
  const rates = compareRates({ parse: () => bare.parse(text), ...fns })
  rows.push([
    document,
    `${text.length} B`,
    formatRate(rates.parse),
    `${formatRate(rates.decode)} (${micros(rates.decode)} µs)`,
    `${formatRate(rates.decodeCanonical)} (${micros(rates.decodeCanonical)} µs)`,
    (rates.decode / rates.decodeCanonical).toFixed(1),
    `${formatRate(rates.encode)} (${micros(rates.encode)} µs)`,
    `${formatRate(rates.encodeCanonical)} (${micros(rates.encodeCanonical)} µs)`,
    (rates.encode / rates.encodeCanonical).toFixed(1)
  ])
}

measure("update_engine request", requestText, {
  decode: () => Effect.runSync(Xml.decodeRequest(requestText)),
  decodeCanonical: () => Codec.request.decodeBySchema(requestText, Xml.defaultLimits),
  encode: () => Effect.runSync(Xml.encodeRequest(request)),
  encodeCanonical: () => Codec.request.encodeBySchema(request)
})
measure("4-app response", responseText, {
  decode: () => Effect.runSync(Xml.decodeResponse(responseText)),
  decodeCanonical: () => Codec.response.decodeBySchema(responseText, Xml.defaultLimits),
  encode: () => Effect.runSync(Xml.encodeResponse(response)),
  encodeCanonical: () => Codec.response.encodeBySchema(response)
})

console.log(
  `Node ${process.version}; docs/s (µs per document), median of 7 interleaved rounds; fast = Xml's path, canonical = fast-xml-parser + Schema\n`
)
printTable(
  ["document", "size", "bare parse", "decode fast", "decode canonical", "x", "encode fast", "encode canonical", "x"],
  rows
)

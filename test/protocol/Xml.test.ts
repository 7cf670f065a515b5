import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Effect, FastCheck, pipe, Schema } from "effect"
import { Codes, Request, Response, Xml } from "effect-omaha"
import { readFixture, xmlFixtures } from "../fixtures.js"

const decodeRequest = (xml: string | Uint8Array, limits?: Xml.Limits) => Effect.runSync(Xml.decodeRequest(xml, limits))
const decodeResponse = (xml: string | Uint8Array) => Effect.runSync(Xml.decodeResponse(xml))
const encodeRequest = (request: Request.Request) => Effect.runSync(Xml.encodeRequest(request))
const encodeResponse = (response: Response.Response) => Effect.runSync(Xml.encodeResponse(response))

const refusal = (effect: Effect.Effect<unknown, Xml.XmlError>): Xml.XmlError => {
  const result = Effect.runSync(Effect.either(effect))
  if (result._tag === "Right") throw new Error("the document was accepted")
  expect(result.left).toBeInstanceOf(Xml.XmlError)
  return result.left
}

const isResponse = (name: string) => /response/.test(name)

describe("fixtures", () => {
  const good = xmlFixtures("omaha").filter((name) => !name.startsWith("omaha/malformed/"))

  it("covers the shared captures", () => {
    expect(good).toEqual([
      "omaha/golden/new-request.xml",
      "omaha/golden/new-response.xml",
      "omaha/request.xml",
      "omaha/update-engine/no-update/request.xml",
      "omaha/update-engine/no-update/response.xml",
      "omaha/update-engine/update/request.xml",
      "omaha/update-engine/update/response.xml"
    ])
  })

  for (const name of good) {
    it(`${name}: decode(encode(decode(x))) equals decode(x)`, () => {
      const xml = readFixture(name)
      if (isResponse(name)) {
        const once = decodeResponse(xml)
        expect(decodeResponse(encodeResponse(once))).toStrictEqual(once)
      } else {
        const once = decodeRequest(xml)
        expect(decodeRequest(encodeRequest(once))).toStrictEqual(once)
      }
    })
  }

  for (const name of xmlFixtures("omaha/malformed")) {
    it(`${name} is refused with a clear error`, () => {
      const error = refusal(Xml.decodeResponse(readFixture(name)))
      expect(error.message).toMatch(/^malformed XML at line \d+, column \d+: /)
    })
  }

  it("says what is wrong with the malformed captures", () => {
    expect(refusal(Xml.decodeResponse(readFixture("omaha/malformed/response-quote-in-name.xml"))).message).toBe(
      "malformed XML at line 2, column 1: invalid element name \"response\\\"\""
    )
    expect(refusal(Xml.decodeResponse(readFixture("omaha/malformed/no-update-response-truncated.xml"))).message)
      .toBe("malformed XML at line 8, column 1: truncated document: <response> is not closed")
  })

  it("reads every update_engine attribute of the update request", () => {
    const request = decodeRequest(readFixture("omaha/update-engine/update/request.xml"))
    expect(request.protocol).toBe("3.0")
    expect(request.updaterVersion).toBe("ChromeOSUpdateEngine-0.1.0.0")
    expect(request.installSource).toBe("ondemandupdate")
    expect(request.isMachine).toBe(true)
    expect(request.userId).toBeUndefined()
    expect(request.os).toStrictEqual(new Request.Os({ version: "Indy", platform: "Chrome OS", sp: "ForcedUpdate_x86_64" }))
    const [app] = request.apps
    expect(app).toMatchObject({
      appId: "{87efface-864d-49a5-9bb3-4b050a7c227a}",
      bootId: "{7D52A1CC-7066-40F0-91C7-7CB6A871BFDE}",
      machineAlias: "mymachine",
      machineId: "{8BDE4C4D-9083-4D61-B41C-3253212C0C37}",
      oem: "ec3000",
      version: "ForcedUpdate",
      track: "dev-channel",
      fromTrack: "developer-build",
      lang: "en-US",
      board: "amd64-generic",
      hardwareClass: "",
      deltaOkay: false
    })
    expect(app!.ping).toStrictEqual(new Request.PingRequest({ active: 1, a: -1, r: -1 }))
    expect(app!.updateCheck).toStrictEqual(new Request.UpdateRequest({ targetVersionPrefix: "" }))
    expect(app!.events).toStrictEqual([
      new Request.EventRequest({ eventType: 3, eventResult: 2, previousVersion: "" })
    ])
  })

  it("reads the update response as update_engine needs it", () => {
    const response = decodeResponse(readFixture("omaha/update-engine/update/response.xml"))
    expect(response.server).toBeUndefined()
    expect(response.dayStart).toStrictEqual(new Response.DayStart({ elapsedSeconds: 49008 }))
    const check = response.apps[0]!.updateCheck!
    expect(check.status).toBe("ok")
    expect(check.urls.map((u) => u.codebase)).toEqual(["http://kam:8080/static/"])
    const [manifest] = check.manifests
    expect(manifest!.version).toBe("9999.0.0")
    expect(manifest!.packages).toStrictEqual([
      new Response.Package({ hash: "+LXvjiaPkeYDLHoNKlf9qbJwvnk=", name: "update.gz", size: 67546213, required: true })
    ])
    expect(manifest!.actions).toStrictEqual([
      new Response.Action({
        event: "postinstall",
        chromeOsVersion: "9999.0.0",
        sha256: "0VAlQW3RE99SGtSB5R4m08antAHO8XDoBMKDyxQT/Mg=",
        needsAdmin: false
      })
    ])
  })

  it("reads the completed no-update response", () => {
    const response = decodeResponse(readFixture("omaha/update-engine/no-update/response.xml"))
    expect(response.dayStart?.elapsedSeconds).toBe(49051)
    expect(response.apps[0]!.status).toBe("ok")
    expect(response.apps[0]!.updateCheck).toStrictEqual(new Response.UpdateResponse({ status: "noupdate" }))
  })
})

describe("golden documents", () => {
  it("a request built in code encodes to the golden request", () => {
    const built = pipe(
      Request.make({ os: new Request.Os({ platform: "Chrome OS", version: "Indy", sp: "ForcedUpdate_x86_64" }) }),
      Request.addApp(
        new Request.AppRequest({
          appId: "{27BD862E-8AE8-4886-A055-F7F1A6460627}",
          version: "1.0.0.0",
          updateCheck: new Request.UpdateRequest({}),
          events: [
            new Request.EventRequest({
              eventType: Codes.EventType.DownloadComplete,
              eventResult: Codes.EventResult.Error
            })
          ]
        })
      )
    )
    const xml = encodeRequest(built)
    expect(xml.startsWith(`<?xml version="1.0" encoding="UTF-8"?>\n<request protocol="3.0">`)).toBe(true)
    expect(decodeRequest(xml)).toStrictEqual(decodeRequest(readFixture("omaha/golden/new-request.xml")))
  })

  it("a response built in code encodes to the golden response", () => {
    const built = pipe(
      Response.make({ server: "mantle", dayStart: new Response.DayStart({ elapsedSeconds: 0 }) }),
      Response.addApp(
        new Response.AppResponse({
          appId: "{52F1B9BC-D31A-4D86-9276-CBC256AADF9A}",
          status: "ok",
          ping: Response.ok,
          updateCheck: new Response.UpdateResponse({
            status: "ok",
            urls: [new Response.Url({ codebase: "http://localhost/updates" })],
            manifests: [
              new Response.Manifest({
                version: "9999.0.0",
                packages: [
                  new Response.Package({
                    name: "update.gz",
                    hash: "+LXvjiaPkeYDLHoNKlf9qbJwvnk=",
                    size: 67546213,
                    required: true
                  })
                ],
                actions: [
                  new Response.Action({
                    event: "postinstall",
                    displayVersion: "9999.0.0",
                    sha256: "0VAlQW3RE99SGtSB5R4m08antAHO8XDoBMKDyxQT/Mg=",
                    isDeltaPayload: true,
                    disablePayloadBackoff: true
                  })
                ]
              })
            ]
          })
        })
      )
    )
    const xml = encodeResponse(built)
    expect(xml.startsWith(`<?xml version="1.0" encoding="UTF-8"?>\n<response protocol="3.0" server="mantle">`)).toBe(true)
    expect(decodeResponse(xml)).toStrictEqual(decodeResponse(readFixture("omaha/golden/new-response.xml")))
  })
})

describe("round trip of generated documents", () => {
  const runs = 1_000

  it("decode(encode(request)) equals the request", () => {
    let checked = 0
    FastCheck.assert(
      FastCheck.property(Arbitrary.make(Request.Request), (request) => {
        expect(decodeRequest(encodeRequest(request))).toStrictEqual(request)
        checked++
      }),
      { numRuns: runs }
    )
    expect(checked).toBe(runs)
  })

  it("decode(encode(response)) equals the response", () => {
    let checked = 0
    FastCheck.assert(
      FastCheck.property(Arbitrary.make(Response.Response), (response) => {
        expect(decodeResponse(encodeResponse(response))).toStrictEqual(response)
        checked++
      }),
      { numRuns: runs }
    )
    expect(checked).toBe(runs)
  })

  it("the schemas are the same transforms in both directions", () => {
    const response = decodeResponse(readFixture("omaha/update-engine/update/response.xml"))
    const xml = Schema.encodeSync(Xml.ResponseFromXml)(response)
    expect(xml).toBe(encodeResponse(response))
    expect(Schema.decodeSync(Xml.ResponseFromXml)(xml)).toStrictEqual(response)
    const request = decodeRequest(readFixture("omaha/request.xml"))
    expect(Schema.decodeSync(Xml.RequestFromXml)(Schema.encodeSync(Xml.RequestFromXml)(request))).toStrictEqual(request)
  })
})

describe("wire format", () => {
  it("writes exact wire names, booleans as true/false and ismachine as 1/0", () => {
    const xml = encodeRequest(
      Request.make({
        isMachine: true,
        os: new Request.Os({ platform: "linux" }),
        apps: [
          new Request.AppRequest({
            appId: "a",
            deltaOkay: true,
            multiManifestOk: false,
            hardwareClass: "",
            fromTrack: "beta",
            updateCheck: new Request.UpdateRequest({ rollbackAllowed: true, updateDisabled: false })
          })
        ]
      })
    )
    expect(xml).toBe(
      `<?xml version="1.0" encoding="UTF-8"?>
<request protocol="3.0" ismachine="1">
 <os platform="linux"/>
 <app appid="a" from_track="beta" delta_okay="true" hardware_class="" multi_manifest_ok="false">
  <updatecheck updatedisabled="false" rollback_allowed="true"/>
 </app>
</request>
`
    )
  })

  it("accepts every well-formed spelling: quotes, white space, comments, instructions", () => {
    const request = decodeRequest(
      `<?xml version='1.0' encoding="us-ascii" standalone='yes' ?>\n<!-- before --><request protocol = '3.0'\n>` +
        `<?pi data?><app appid='a "quoted"' ></app ><!-- inside --></request >\n<!-- after -->\n`
    )
    expect(request.apps.map((a) => a.appId)).toEqual([`a "quoted"`])
  })

  it("reads element and attribute names outside ASCII as XML 1.0 does", () => {
    const request = decodeRequest(
      `<request protocol="3.0"><\u00fcnknown a\u00b7b="1"/><a.b-c_d:e/><app appid="a" data-\u00e9="x" x\u{10000}y="1"/></request>`
    )
    expect(request.apps.map((a) => a.appId)).toEqual(["a"])
    expect(refusal(Xml.decodeRequest(`<request protocol="3.0"><app \u00b7x="1"/></request>`)).message).toBe(
      "malformed XML at line 1, column 30: unexpected \"\u00b7\" in <app>"
    )
    expect(refusal(Xml.decodeRequest(`<request protocol="3.0"><app\u00d7 appid="a"/></request>`)).message).toBe(
      "malformed XML at line 1, column 25: invalid element name \"app\u00d7\""
    )
  })

  it("reads booleans leniently", () => {
    const xml = (value: string) =>
      `<request protocol="3.0" ismachine="${value}"><app appid="a" delta_okay="${value}"/></request>`
    for (const t of ["true", "True", "TRUE", "1"]) {
      const request = decodeRequest(xml(t))
      expect([request.isMachine, request.apps[0]!.deltaOkay]).toEqual([true, true])
    }
    for (const f of ["false", "False", "0"]) {
      const request = decodeRequest(xml(f))
      expect([request.isMachine, request.apps[0]!.deltaOkay]).toEqual([false, false])
    }
  })

  it("keeps absent and empty apart (cohorts, ping days)", () => {
    const request = decodeRequest(
      `<request protocol="3.0"><app appid="a" cohort="" cohortname="x"><ping a="-1"/></app></request>`
    )
    const app = request.apps[0]!
    expect(app.cohort).toBe("")
    expect("cohortHint" in app).toBe(false)
    expect(app.cohortName).toBe("x")
    expect(app.ping).toStrictEqual(new Request.PingRequest({ a: -1 }))
    expect("r" in app.ping!).toBe(false)
    const again = encodeRequest(request)
    expect(again).toContain(`cohort="" cohortname="x"`)
    expect(again).not.toContain("cohorthint")
  })

  it("ignores unknown attributes and elements, including ones named like Object members", () => {
    const request = decodeRequest(
      `<request protocol="3.0" foo="1" constructor="x" __proto__="y" toString="z">
        <future><app appid="nested"/></future>
        <constructor/><__proto__ a="1"/><prototype/>
        <app appid="a" hasOwnProperty="1" brand="B"><ping active="1" extra="2"/><gizmo/></app>
      </request>`
    )
    expect(request.apps.map((a) => a.appId)).toEqual(["a"])
    expect(request.apps[0]!.brand).toBe("B")
    expect(request.apps[0]!.ping).toStrictEqual(new Request.PingRequest({ active: 1 }))
    expect(({} as Record<string, unknown>)["a"]).toBeUndefined()
    expect(Object.prototype).not.toHaveProperty("polluted")
  })

  it("escapes and restores attribute text, including white space and markup", () => {
    const tricky = "a&b <c> \"d\" 'e'\tf\ng\r\nh ]]> \u00e9\u{1F600}"
    const request = Request.make({ apps: [new Request.AppRequest({ appId: tricky })] })
    const xml = encodeRequest(request)
    expect(xml).toContain(`appid="a&amp;b &lt;c&gt; &quot;d&quot; 'e'&#9;f&#10;g&#13;&#10;h ]]&gt; \u00e9\u{1F600}"`)
    expect(decodeRequest(xml).apps[0]!.appId).toBe(tricky)
  })

  it("expands predefined entities and character references, and normalises attribute white space", () => {
    const request = decodeRequest(
      `<request protocol="3.0"><app appid="&#x41;&#66;&amp;&lt;&gt;&quot;&apos;" brand="a\tb\nc"/></request>`
    )
    expect(request.apps[0]!.appId).toBe("AB&<>\"'")
    expect(request.apps[0]!.brand).toBe("a b c")
  })

  it("carries metadata as CDATA, including ]]> and carriage returns", () => {
    const content = `{"a": "]]>", "b": "x\r\ny"} & <tags>`
    const response = Response.make({
      apps: [
        new Response.AppResponse({
          appId: "a",
          status: "ok",
          updateCheck: new Response.UpdateResponse({
            status: "ok",
            manifests: [
              new Response.Manifest({
                version: "1.0.0",
                packages: [
                  new Response.Package({
                    name: "p",
                    metadata: new Response.Metadata({ contentType: "application/json", content })
                  })
                ]
              })
            ]
          })
        })
      ]
    })
    const xml = encodeResponse(response)
    expect(xml).toContain(`<metadata content-type="application/json"><![CDATA[`)
    expect(decodeResponse(xml)).toStrictEqual(response)
    const plain = decodeResponse(
      `<response protocol="3.0"><app appid="a" status="ok"><updatecheck status="ok"><manifest version="1">` +
        `<packages><package name="p"><metadata content-type="text/plain">x &amp; <![CDATA[<y>]]></metadata>` +
        `</package></packages></manifest></updatecheck></app></response>`
    )
    expect(plain.apps[0]!.updateCheck!.manifests[0]!.packages[0]!.metadata!.content).toBe("x & <y>")
  })

  it("accepts UTF-8 bytes and a byte-order mark, and refuses invalid UTF-8", () => {
    const bytes = new TextEncoder().encode(`\uFEFF<request protocol="3.0"><app appid="\u00e9"/></request>`)
    expect(decodeRequest(bytes).apps[0]!.appId).toBe("\u00e9")
    expect(refusal(Xml.decodeRequest(new Uint8Array([0x3c, 0xff, 0x3e]))).message).toBe(
      "malformed XML: the document is not valid UTF-8"
    )
  })

  it("refuses values the schema cannot take where the protocol cannot do without them, naming where", () => {
    const error = refusal(Xml.decodeRequest(`<request protocol="3.0"><app appid="a"><event eventtype="soon"/></app></request>`))
    expect(error.message).toBe(`invalid <request> document at request/app[1]/event[1]/eventtype: expected an integer, got "soon"`)
    expect(error.path).toBe("request/app[1]/event[1]/eventtype")
    expect(refusal(Xml.decodeRequest(`<request protocol="3.0"><app/></request>`)).message).toBe(
      "invalid <request> document at request/app[1]/appid: is missing"
    )
    expect(
      refusal(Xml.decodeResponse(`<response protocol="3.0"><app appid="a" status="maybe"/></response>`)).message
    ).toMatch(/^invalid <response> document at response\/app\[1\]\/status: /)
  })
})

describe("hostile input", () => {
  const refusedQuickly = (input: string | Uint8Array, pattern: RegExp, limits?: Xml.Limits) => {
    const started = performance.now()
    const error = refusal(Xml.decodeRequest(input, limits))
    const elapsed = performance.now() - started
    expect(error.message).toMatch(pattern)
    expect(elapsed).toBeLessThan(1000)
    return error
  }

  it("refuses entity expansion (billion laughs)", () => {
    const lol = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<request protocol="3.0"><app appid="&lol9;"/></request>`
    const error = refusedQuickly(lol, /<!DOCTYPE is refused/)
    expect([error.line, error.column]).toEqual([2, 1])
  })

  it("refuses external entities", () => {
    refusedQuickly(
      `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><request protocol="3.0"><app appid="&xxe;"/></request>`,
      /<!DOCTYPE is refused/
    )
    refusedQuickly(`<request protocol="3.0"><!ENTITY x "y"><app appid="a"/></request>`, /<!ENTITY is refused/)
    refusedQuickly(`<request protocol="3.0"><app appid="&xxe;"/></request>`, /undeclared entity reference "&xxe;"/)
  })

  it("refuses a 2 MiB document before parsing it", () => {
    const big = `<request protocol="3.0"><app appid="${"x".repeat(2 * 1024 * 1024)}"/></request>`
    refusedQuickly(big, /too large: at least \d+ bytes, the limit is 1048576/)
    refusedQuickly(new TextEncoder().encode(big), /too large/)
  })

  it("refuses 50,000 nested elements", () => {
    const deep = `<request protocol="3.0">${"<app>".repeat(50_000)}${"</app>".repeat(50_000)}</request>`
    refusedQuickly(deep, /elements nested deeper than 32 levels/)
  })

  it("reads a tag with 70,000 attributes in linear time", () => {
    // Each attribute used to be checked against all before it and searched
    // to the end of the document: 11 s for these 690 KB, under the size limit.
    const attributes = Array.from({ length: 70_000 }, (_, i) => `a${i}=""`).join(" ")
    const started = performance.now()
    const request = decodeRequest(`<request protocol="3.0" ${attributes}/>`)
    expect(performance.now() - started).toBeLessThan(2000)
    expect(request.protocol).toBe("3.0")
  })

  it("refuses too many elements", () => {
    const wide = `<request protocol="3.0">${`<app appid="a"/>`.repeat(20_000)}</request>`
    refusedQuickly(wide, /more than 10000 elements/)
    const few = `<request protocol="3.0">${`<app appid="a"/>`.repeat(3)}</request>`
    refusedQuickly(few, /more than 3 elements/, { ...Xml.defaultLimits, maxElements: 3 })
  })

  it("refuses truncated documents at every cut of a real request", () => {
    const xml = readFixture("omaha/update-engine/update/request.xml").trimEnd()
    for (let cut = 0; cut < xml.length; cut++) {
      const result = Effect.runSync(Effect.either(Xml.decodeRequest(xml.slice(0, cut))))
      expect(result._tag, `cut at ${cut}`).toBe("Left")
    }
    refusedQuickly(xml.slice(0, xml.indexOf("</app>")), /truncated document: <app> is not closed/)
  })

  it("refuses the wrong root element", () => {
    const error = refusedQuickly(readFixture("omaha/update-engine/update/response.xml"), /wrong document/)
    expect(error.message).toBe("wrong document: expected a <request> element, found <response>")
    expect(refusal(Xml.decodeResponse(readFixture("omaha/request.xml"))).message).toBe(
      "wrong document: expected a <response> element, found <request>"
    )
  })

  it("refuses non-numeric numbers", () => {
    for (const value of ["abc", "1.5", "0x10", "", " ", "1e3", "99999999999999999999"]) {
      refusedQuickly(
        `<request protocol="3.0"><app appid="a"><event eventtype="${value}"/></app></request>`,
        /at request\/app\[1\]\/event\[1\]\/eventtype: expected an integer/
      )
    }
  })

  it("refuses documents that are not well-formed", () => {
    const cases: Array<[string, RegExp]> = [
      [``, /no root element/],
      [`   `, /no root element/],
      [`<request protocol="3.0"/><request protocol="3.0"/>`, /more than one root element/],
      [`<request protocol="3.0"/>trailing`, /text outside the root element/],
      [`<request protocol="3.0"><app appid="a"></request>`, /closing tag <\/request> does not match <app>/],
      [`<request protocol="3.0"></app></request>`, /closing tag <\/app> does not match <request>/],
      [`<request protocol="3.0" protocol="3.0"/>`, /column 25: attribute protocol is repeated in <request>/],
      [`<request ${Array.from({ length: 20 }, (_, i) => `a${i}="" `).join("")}a2=""/>`, /attribute a2 is repeated in <request>/],
      [`<request protocol="3.0"><app appid="a<b"/></request>`, /"<" inside an attribute value/],
      [`<request protocol="3.0"><app appid="a" & /></request>`, /column 40: unexpected "&" in <app>/],
      [`<request protocol="3.0"><app appid/></request>`, /attribute appid of <app> has no value/],
      [`<request protocol="3.0"><app / ></request>`, /"\/" inside <app> must end the tag/],
      [`<request protocol="3.0"><app appid="a&b"/></request>`, /bare "&"/],
      [`<request protocol="3.0"><app appid="a"b="c"/></request>`, /attributes of <app> must be separated by white space/],
      [`<request protocol="3.0"><app appid="&#0;"/></request>`, /character reference &#0; names a character/],
      [`<request protocol="3.0"><app appid="\u0001"/></request>`, /character U\+0001 is not allowed/],
      [`<request protocol=3.0/>`, /the value of attribute protocol of <request> must be quoted/],
      [`<1request/>`, /invalid element name/],
      [`<?xml version="1<.0"?><request protocol="3.0"/>`, /column 1: malformed XML declaration/],
      [`<?xml version="1.0" encoding="UTF-16"?><request protocol="3.0"/>`, /unsupported encoding UTF-16: send UTF-8/],
      [`<?xml version="1.0" encoding="ISO-8859-1"?><request protocol="3.0"/>`, /unsupported encoding ISO-8859-1/],
      [` <?xml version="1.0"?><request protocol="3.0"/>`, /the XML declaration must come first/],
      [`<request protocol="3.0"><?xml version="1.0"?></request>`, /the XML declaration must come first/],
      [`<?XML version="1.0"?><request protocol="3.0"/>`, /malformed XML declaration/]
    ]
    for (const [xml, pattern] of cases) refusedQuickly(xml, pattern)
  })
})

describe("reading tolerantly", () => {
  const readRequest = (xml: string) => Effect.runSync(Xml.decodeRequestWithWarnings(xml))
  const readResponse = (xml: string) => Effect.runSync(Xml.decodeResponseWithWarnings(xml))
  const flatcar = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"

  it("reads go-omaha's no-update and update responses as its encoder writes them", () => {
    const none = readResponse(readFixture("go-omaha/no-update-response.xml"))
    expect(none.warnings).toEqual([])
    expect(none.value.server).toBe("go-omaha")
    expect(none.value.dayStart).toStrictEqual(new Response.DayStart({ elapsedSeconds: 0 }))
    expect(none.value.apps[0]).toStrictEqual(
      new Response.AppResponse({
        appId: flatcar,
        status: "ok",
        ping: Response.ok,
        updateCheck: new Response.UpdateResponse({ status: "noupdate" }),
        events: [Response.ok]
      })
    )
    const update = readResponse(readFixture("go-omaha/update-response.xml"))
    expect(update.warnings).toEqual([])
    const check = update.value.apps[0]!.updateCheck!
    expect(check.urls).toStrictEqual([new Response.Url({ codebase: "http://127.0.0.1:8000/packages/" })])
    expect(check.manifests).toStrictEqual([
      new Response.Manifest({
        version: "3815.2.1",
        packages: [
          new Response.Package({
            name: "update.gz",
            hash: "+LXvjiaPkeYDLHoNKlf9qbJwvnk=",
            hashSha256: "0VAlQW3RE99SGtSB5R4m08antAHO8XDoBMKDyxQT/Mg=",
            size: 67546213,
            required: false
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
    ])
  })

  it("reads go-omaha's zero values, skipping the apps and the update check it cannot read", () => {
    const { value, warnings } = readResponse(readFixture("go-omaha/zero-values-response.xml"))
    expect(value.server).toBe("")
    const [first, second, ...rest] = value.apps
    expect(rest).toEqual([])
    expect(first!.ping).toStrictEqual(new Response.Ack({ status: "" }))
    const check = first!.updateCheck!
    expect(check.urls.map((url) => url.codebase)).toEqual(["", "http://mirror.example/packages/"])
    expect(check.manifests[0]).toStrictEqual(
      new Response.Manifest({
        version: "",
        packages: [new Response.Package({ name: "", hash: "", size: 0, required: false })],
        actions: [new Response.Action({ event: "" })]
      })
    )
    // An update check without a status is read as absent: clients call that an invalid answer.
    expect(second!.appId).toBe("{a8b7e42b-3c57-4b1b-9a0d-5f0d4c2d6e11}")
    expect(second!.updateCheck).toBeUndefined()
    expect(warnings).toEqual([
      "response/app[2]/updatecheck/status: is missing; <updatecheck> skipped",
      "response/app[3]/status: is missing; <app> skipped",
      "response/app[4]/appid: is missing; <app> skipped"
    ])
  })

  it("reads go-omaha's client request without warnings", () => {
    const { value, warnings } = readRequest(readFixture("go-omaha/request.xml"))
    expect(warnings).toEqual([])
    expect(value).toMatchObject({ protocol: "3.0", isMachine: true, version: "go-omaha", updaterVersion: "go-omaha" })
    expect(value.apps[0]).toMatchObject({ appId: flatcar, version: "3815.2.0", track: "stable" })
    expect(value.apps[0]!.events).toStrictEqual([new Request.EventRequest({ eventType: 3, eventResult: 2 })])
  })

  it("reads numbers and booleans with white space around them, as go-omaha does", () => {
    const { value, warnings } = readRequest(
      `<request protocol="3.0" ismachine=" 1 "><app appid="a" installage=" 5" delta_okay="true "><ping active="\t1\n"/>` +
        `<event eventtype=" 3 " eventresult="2 " errorcode=" 0"/></app></request>`
    )
    expect(warnings).toEqual([])
    expect(value.isMachine).toBe(true)
    expect(value.apps[0]).toMatchObject({ installAge: 5, deltaOkay: true, ping: { active: 1 } })
    expect(value.apps[0]!.events).toStrictEqual([new Request.EventRequest({ eventType: 3, eventResult: 2, errorCode: 0 })])
  })

  it("reads a value it cannot read as absent, and skips an app without appid while another app is read", () => {
    const { value, warnings } = readRequest(
      `<request protocol="3.0" ismachine="2"><app version="1.0.0"><updatecheck/></app>` +
        `<app appid="a" version="1.0.0" installage="soon" delta_okay="maybe"><ping active="yes" r="1"/><updatecheck updatedisabled="no"/>` +
        `<event eventtype="3" eventresult="x"/></app></request>`
    )
    expect("isMachine" in value).toBe(false)
    expect(value.apps.map((app) => app.appId)).toEqual(["a"])
    const [app] = value.apps
    expect("installAge" in app! || "deltaOkay" in app!).toBe(false)
    expect(app!.ping).toStrictEqual(new Request.PingRequest({ r: 1 }))
    expect(app!.updateCheck).toStrictEqual(new Request.UpdateRequest({}))
    expect(app!.events).toStrictEqual([new Request.EventRequest({ eventType: 3 })])
    expect(warnings).toEqual([
      `request/ismachine: expected a boolean, got "2"; read as absent`,
      `request/app[2]/installage: expected an integer, got "soon"; read as absent`,
      `request/app[2]/delta_okay: expected a boolean, got "maybe"; read as absent`,
      `request/app[2]/ping/active: expected an integer, got "yes"; read as absent`,
      `request/app[2]/updatecheck/updatedisabled: expected a boolean, got "no"; read as absent`,
      `request/app[2]/event[1]/eventresult: expected an integer, got "x"; read as absent`,
      "request/app[1]/appid: is missing; <app> skipped"
    ])
    // decodeRequest gives the same value.
    expect(Effect.runSync(Xml.decodeRequest(
      `<request protocol="3.0" ismachine="2"><app appid="a" installage="soon"/></request>`
    ))).toStrictEqual(new Request.Request({ protocol: "3.0", apps: [new Request.AppRequest({ appId: "a" })] }))
  })

  it("refuses a request without protocol, an event without a readable type, and one whose apps all lack an appid", () => {
    expect(refusal(Xml.decodeRequest(`<request><app appid="a"/></request>`)).message).toBe(
      "invalid <request> document at request/protocol: is missing"
    )
    expect(refusal(Xml.decodeRequest(`<request protocol="3.0"><app appid="a"><event/></app></request>`)).message).toBe(
      "invalid <request> document at request/app[1]/event[1]/eventtype: is missing"
    )
    expect(refusal(Xml.decodeRequest(`<request protocol="3.0"><app/><app version="1"/></request>`)).message).toBe(
      "invalid <request> document at request/app[1]/appid: is missing"
    )
  })

  it("skips urls and actions it cannot read; refuses a manifest without version and a package without name", () => {
    const update = (inner: string) =>
      `<response protocol="3.0"><app appid="a" status="ok"><updatecheck status="ok">${inner}</updatecheck></app></response>`
    const { value, warnings } = readResponse(update(
      `<urls><url/><url codebase="http://h/"/></urls><manifest version="1"><packages><package name="p" size="-1" required="perhaps"/></packages>` +
        `<actions><action sha256="x"/><action event="postinstall" MaxFailureCountPerUrl="many"/></actions></manifest>`
    ))
    const check = value.apps[0]!.updateCheck!
    expect(check.urls).toStrictEqual([new Response.Url({ codebase: "http://h/" })])
    expect(check.manifests[0]!.packages).toStrictEqual([new Response.Package({ name: "p" })])
    expect(check.manifests[0]!.actions).toStrictEqual([new Response.Action({ event: "postinstall" })])
    expect(warnings).toHaveLength(5)
    expect(warnings).toContain("response/app[1]/updatecheck/urls/url[1]/codebase: is missing; <url> skipped")
    expect(warnings).toContain("response/app[1]/updatecheck/manifest[1]/actions/action[1]/event: is missing; <action> skipped")
    expect(refusal(Xml.decodeResponse(update(`<manifest><packages><package name="p"/></packages></manifest>`))).message).toBe(
      "invalid <response> document at response/app[1]/updatecheck/manifest[1]/version: is missing"
    )
    expect(refusal(Xml.decodeResponse(update(`<manifest version="1"><packages><package size="1"/></packages></manifest>`))).message)
      .toBe("invalid <response> document at response/app[1]/updatecheck/manifest[1]/packages/package[1]/name: is missing")
    expect(refusal(Xml.decodeResponse(`<response><app appid="a" status="ok"/></response>`)).message).toBe(
      "invalid <response> document at response/protocol: is missing"
    )
  })

  it("skips an app with an unknown status while another app is read", () => {
    const { value, warnings } = readResponse(
      `<response protocol="3.0"><app appid="a" status="error-nokey"/><app appid="b" status="ok"/></response>`
    )
    expect(value.apps.map((app) => app.appId)).toEqual(["b"])
    expect(warnings).toEqual([`response/app[1]/status: unknown value "error-nokey"; <app> skipped`])
  })
})

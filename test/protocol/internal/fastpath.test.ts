// The two ways a document is read: the fast path (the scan builds the
// encoded object, then trusted construction) and the canonical one
// (fast-xml-parser and the Schema transforms). Over generated documents and
// over mutated real ones, both give the same value and warnings, or both
// refuse with the same error. 10,000 documents per kind and per family.
import { describe, expect, it } from "@effect/vitest"
import { Either, Equal, FastCheck as fc, Utils } from "effect"
import { Xml } from "effect-omaha"
import * as Codec from "../../../src/protocol/internal/codec.js"
import * as Document from "../../../src/protocol/internal/document.js"
import type { Shape } from "../../../src/protocol/internal/shape.js"
import { readFixture, xmlFixtures } from "../../fixtures.js"

const runs = 10_000

interface Kind {
  readonly name: "request" | "response"
  readonly document: Document.Document
  readonly codec: Codec.Codec<unknown>
}

const kinds: ReadonlyArray<Kind> = [
  { name: "request", document: Document.requestDocument, codec: Codec.request as Codec.Codec<unknown> },
  { name: "response", document: Document.responseDocument, codec: Codec.response as Codec.Codec<unknown> }
]

/** How often each outcome came up, so a test can tell that its documents reach all three. */
interface Outcomes {
  read: number
  warned: number
  refused: number
}

// Both paths on one input: same refusal, or the same value (prototypes, keys
// in order, values) and the same warnings.
const compare = (kind: Kind, input: string | Uint8Array, outcomes: Outcomes) => {
  const fast = kind.codec.read(input, Xml.defaultLimits)
  const canonical = kind.codec.readBySchema(input, Xml.defaultLimits)
  if (Either.isLeft(canonical)) {
    outcomes.refused++
    expect(fast).toStrictEqual(canonical)
    return
  }
  expect(Either.isRight(fast)).toBe(true)
  const a = Either.getOrThrow(fast)
  const b = canonical.right
  if (b.warnings.length > 0) outcomes.warned++
  else outcomes.read++
  expect(a.warnings).toStrictEqual(b.warnings)
  expect(a.value).toStrictEqual(b.value)
  expect(Utils.structuralRegion(() => Equal.equals(a.value, b.value))).toBe(true)
}

// -----------------------------------------------------------------------------
// Generated documents: any arrangement of the layout's elements and
// attributes, unknown ones among them, with values from a pool that holds
// good, odd and unreadable ones.
// -----------------------------------------------------------------------------

const values = [
  "", "0", "1", "-1", " 1 ", "2", "42", "+5", "1.5", "x", "3.0", "true", "false", "True", " false", "maybe",
  "ok", "noupdate", "error-internal", "restricted", "error-unknownApplication", "error-hash",
  "a&amp;b", "&lt;&gt;&quot;&apos;", "&#x41;&#66;", "&#10;", "\u00e9t\u00e9", "\u{1F600}", "a b", "line\nbreak",
  "tab\there", "cr\r\nlf", "lone\rcr", "99999999999999999999", "{87efface-864d-49a5-9bb3-4b050a7c227a}"
]
const texts = ["", " ", "text", "a &amp; b", "<![CDATA[x <y> ]]>", "<![CDATA[]]>", "\r\n  ", "&#13;", "\u00e9"]
const spaces = fc.constantFrom("", " ", "\n", "\r\n\t", "  ")
const unknownNames = ["x", "future", "data-y", "constructor", "__proto__"]

const attribute = (names: ReadonlyArray<string>) =>
  fc.tuple(fc.constantFrom(...names), fc.oneof(fc.constantFrom(...values), fc.string({ maxLength: 6 })), fc.boolean())

const escapeGenerated = (s: string, quote: string) =>
  s.replace(/[<]/g, "&lt;").replace(/&(?![a-z#0-9]+;)/gi, "&amp;").replaceAll(quote, quote === "\"" ? "&quot;" : "&apos;")

const element = (name: string, shape: Shape | undefined, depth: number): fc.Arbitrary<string> => {
  const attrNames = [...(shape?.attributes ?? []), ...unknownNames]
  const childArbs: Array<fc.Arbitrary<string>> = depth > 6 ? [] : [
    ...(shape?.children ?? []).map((child) => element(child.name, child.shape, depth + 1)),
    ...(depth < 2 ? unknownNames.slice(0, 2).map((n) => element(n, undefined, depth + 4)) : [])
  ]
  return fc.record({
    attrs: fc.uniqueArray(attribute(attrNames), { maxLength: 6, selector: ([n]) => n }),
    children: childArbs.length === 0 ? fc.constant([]) : fc.array(fc.oneof(...childArbs), { maxLength: depth === 0 ? 5 : 3 }),
    text: shape?.text === true ? fc.option(fc.constantFrom(...texts), { nil: undefined }) : fc.constant(undefined),
    before: spaces,
    inner: spaces,
    selfClose: fc.boolean()
  }).map(({ attrs, before, children, inner, selfClose, text }) => {
    const attributes = attrs.map(([n, v, single]) => {
      const quote = single ? "'" : "\""
      return `${inner || " "}${n}=${quote}${escapeGenerated(v, quote)}${quote}`
    }).join("")
    const body = (text ?? "") + children.join(before)
    return body === "" && selfClose ? `<${name}${attributes}${inner}/>` : `<${name}${attributes}>${before}${body}</${name}${inner}>`
  })
}

const generated = (kind: Kind) =>
  fc.record({
    root: element(kind.document.root, kind.document.shape, 0),
    declaration: fc.constantFrom("", `<?xml version="1.0" encoding="UTF-8"?>\n`, `<?xml version='1.0'?>`),
    bytes: fc.boolean()
  }).map(({ bytes, declaration, root }) => {
    // A root without its protocol is refused by both: give most documents one.
    const text = declaration + root.replace(/^<(request|response)(?=[\s/>])(?![^>]*protocol=)/, `<$1 protocol="3.0"`)
    return bytes ? new TextEncoder().encode(text) : text
  })

// -----------------------------------------------------------------------------
// Mutated real documents: the captures and go-omaha's documents, with one to
// three of byte flips, cuts, moved lines, unknown elements, entities, odd
// white space and encodings.
// -----------------------------------------------------------------------------

const flips = ["<", ">", "&", "\"", "'", "/", "=", " ", "\r", "\t", "\n", "]", "!", "?", "-", "a", "0", "\u00e9", "\uFFFE", "\u0000", "\u{10000}"]
const inserts = [
  "<x/>", "<future a=\"1\"><app appid=\"n\"/></future>", "<!-- c -->", "<?pi x?>", "<![CDATA[c]]>", "&amp;", "&#x41;", "&lt;",
  "&unknown;", "&#0;", "&", "<!DOCTYPE x>", "<!ENTITY e \"v\">", "\u00a0", "<app appid=\"extra\"/>", "<event eventtype=\"1\"/>",
  "<url codebase=\"http://x/\"/>", "<ping status=\"ok\"/>", "\r\n", "\t", " protocol=\"3.0\"", " status=\"ok\"", " appid=\"a\""
]

type Mutation = (doc: string, at: number, pick: number) => string

const mutations: ReadonlyArray<Mutation> = [
  // A character flipped.
  (doc, at, pick) => doc.slice(0, at) + flips[pick % flips.length]! + doc.slice(at + 1),
  // Cut short.
  (doc, at) => doc.slice(0, at),
  // Something inserted: markup, an element, a reference, an attribute.
  (doc, at, pick) => doc.slice(0, at) + inserts[pick % inserts.length]! + doc.slice(at),
  // Two lines swapped (elements reordered, or the tree broken).
  (doc, at, pick) => {
    const lines = doc.split("\n")
    const i = at % lines.length
    const j = pick % lines.length
    ;[lines[i], lines[j]] = [lines[j]!, lines[i]!]
    return lines.join("\n")
  },
  // White space between attributes and around "=" made odd.
  (doc, _, pick) => doc.replace(/ ([a-zA-Z_]+)="/g, (m, name: string, offset: number) =>
    (offset + pick) % 3 === 0 ? `\r\n\t${name} = "` : m),
  // Attribute values with line ends and tabs in them.
  (doc, at) => doc.replace(/="([^"]*)"/g, (m, v: string, offset: number) => (offset % 5 === at % 5 ? `="${v}\r\n\t${v}"` : m)),
  // The declaration's encoding, or a byte-order mark.
  (doc, _, pick) => {
    const declarations = [
      "\uFEFF",
      `<?xml version="1.0" encoding="us-ascii"?>`,
      `<?xml version="1.0" encoding="ISO-8859-1"?>`,
      `<?xml version="1.0" encoding="UTF-16"?>`,
      `<?xml version="1.1"?>`,
      " "
    ]
    const body = doc.replace(/^<\?xml[^>]*\?>\s*/, "")
    return declarations[pick % declarations.length]! + body
  },
  // An attribute value replaced by one from the pool.
  (doc, at, pick) => {
    const spans = [...doc.matchAll(/="([^"]*)"/g)]
    if (spans.length === 0) return doc
    const m = spans[at % spans.length]!
    const start = m.index! + 2
    return doc.slice(0, start) + escapeGenerated(values[pick % values.length]!, "\"") + doc.slice(start + m[1]!.length)
  }
]

const toBytes = (text: string, pick: number): Uint8Array => {
  const bytes = new TextEncoder().encode(text)
  // Sometimes bytes that are not UTF-8, or a UTF-8 byte-order mark.
  if (pick % 7 === 0 && bytes.length > 0) bytes[pick % bytes.length] = 0xff
  if (pick % 11 === 0) return new Uint8Array([0xef, 0xbb, 0xbf, ...bytes])
  return bytes
}

const mutated = (sources: ReadonlyArray<string>) =>
  fc.record({
    source: fc.constantFrom(...sources),
    steps: fc.array(fc.tuple(fc.nat(mutations.length - 1), fc.nat(), fc.nat()), { minLength: 1, maxLength: 3 }),
    bytes: fc.nat()
  }).map(({ bytes, source, steps }) => {
    let doc = source
    for (const [which, at, pick] of steps) doc = mutations[which]!(doc, doc.length === 0 ? 0 : at % doc.length, pick)
    return bytes % 2 === 0 ? doc : toBytes(doc, bytes)
  })

const fixtures = [...xmlFixtures("omaha"), ...xmlFixtures("go-omaha")].filter((name) => !name.includes("/malformed/"))

for (const kind of kinds) {
  describe(`${kind.name}: the fast path reads as the parser and the schema do`, () => {
    // Generous timeouts: the suite runs its files side by side on two cores.
    it(`${runs} generated documents`, { timeout: 120_000 }, () => {
      const outcomes: Outcomes = { read: 0, warned: 0, refused: 0 }
      fc.assert(fc.property(generated(kind), (input) => compare(kind, input, outcomes)), { numRuns: runs })
      expect(outcomes.read + outcomes.warned + outcomes.refused).toBe(runs)
      // Each outcome often enough to mean something.
      expect(Math.min(outcomes.read, outcomes.warned, outcomes.refused)).toBeGreaterThan(runs / 50)
    })

    it(`${runs} mutated real documents`, { timeout: 120_000 }, () => {
      const sources = fixtures.filter((name) => name.includes(kind.name)).map(readFixture)
      expect(sources.length).toBeGreaterThanOrEqual(3)
      const outcomes: Outcomes = { read: 0, warned: 0, refused: 0 }
      fc.assert(fc.property(mutated(sources), (input) => compare(kind, input, outcomes)), { numRuns: runs })
      expect(outcomes.read + outcomes.warned + outcomes.refused).toBe(runs)
      expect(Math.min(outcomes.read, outcomes.refused)).toBeGreaterThan(runs / 20)
      expect(outcomes.warned).toBeGreaterThan(runs / 200)
    })
  })
}

/**
 * Documents as text and the encoded objects of the protocol classes: reading
 * (size limit, UTF-8, the hardened scan, fast-xml-parser, then the layout of
 * `shape.ts`) and writing. Both directions of `Xml.ts` go through here, with
 * the schema or its fast path on the encoded objects.
 */
import { Either } from "effect"
import { XMLParser } from "fast-xml-parser"
import { Request } from "../Request.js"
import { Response } from "../Response.js"
import { isAscii, isUtf8 } from "node:buffer"
import { type Builder, isXmlCodePoint, position, scan, type ScanLimits } from "./scan.js"
import { attributeNames, compile, type Shape } from "./shape.js"
import { textKey } from "./wire.js"

/** Why a document was refused, and where when known: the fields of an `XmlError`. */
export interface Refusal {
  readonly message: string
  readonly line?: number
  readonly column?: number
}

/** The limits a document is read within. */
export interface DocumentLimits extends ScanLimits {
  readonly maxBytes: number
}

/** The XML declaration every written document starts with. */
export const declaration = `<?xml version="1.0" encoding="UTF-8"?>`

// -----------------------------------------------------------------------------
// Layout
// -----------------------------------------------------------------------------

/**
 * What becomes of an element whose required attribute is missing or cannot
 * be read: skipped, or skipped only while another element of its list is
 * read (otherwise the document is refused).
 */
export type Skip = "always" | "whileAnotherRemains"

/** A kind of document: its root element, the layout of the class it carries, and what it can read without. */
export interface Document {
  readonly root: string
  readonly shape: Shape
  /** Elements, by their path below the root without positions, that may be skipped (see `tolerance.ts`). */
  readonly skippable: ReadonlyMap<string, Skip>
}

/**
 * The `<request>` document. An `<app>` without an `appid` is skipped while
 * the request has another app to answer; everything else required (`protocol`,
 * an event's `eventtype`) refuses the request, as go-omaha refuses it.
 */
export const requestDocument: Document = {
  root: "request",
  shape: compile(Request.ast),
  skippable: new Map([["app", "whileAnotherRemains"]])
}

/**
 * The `<response>` document. An app without a readable `appid` or `status` is
 * skipped while another app is read; an update check without a readable
 * `status` is read as absent, which clients report as an invalid answer
 * (update_engine's error 34); a `url` without a codebase and an `action`
 * without an event are skipped. A manifest without a version and a package
 * without a name refuse the response: skipping either would change what is
 * installed (a floor left out, another package first).
 */
export const responseDocument: Document = {
  root: "response",
  shape: compile(Response.ast),
  skippable: new Map([
    ["app", "whileAnotherRemains"],
    ["app/updatecheck", "always"],
    ["app/updatecheck/urls/url", "always"],
    ["app/updatecheck/manifest/actions/action", "always"]
  ])
}
const knownAttributes = attributeNames(responseDocument.shape, attributeNames(requestDocument.shape))

// Names the parser refuses outright as object keys; unknown elements with
// these names are renamed so that they are ignored like any other.
const reservedNames = new Set(["__proto__", "constructor", "prototype"])

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: (name: string) => !knownAttributes.has(name),
  attributeNamePrefix: "",
  allowBooleanAttributes: false,
  parseAttributeValue: false,
  parseTagValue: false,
  trimValues: false,
  processEntities: false,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  cdataPropName: "#cdata",
  removeNSPrefix: false,
  jPath: false,
  // The scan enforces the caller's depth limit; this is only a backstop.
  maxNestedTags: 1024,
  transformTagName: (name: string) => (reservedNames.has(name) ? `unknown:${name}` : name)
})

// -----------------------------------------------------------------------------
// Decoding: text -> encoded object
// -----------------------------------------------------------------------------

const predefined: Readonly<Record<string, string>> = { amp: "&", lt: "<", gt: ">", quot: "\"", apos: "'" }
const references = /&(?:(amp|lt|gt|quot|apos)|#([0-9]+)|#x([0-9a-fA-F]+));/g

// The scan has already refused malformed markup, references and characters XML cannot carry.
const replaceReference = (_: string, name: string | undefined, dec: string | undefined, hex: string | undefined) => {
  if (name !== undefined) return predefined[name]!
  const cp = dec !== undefined ? Number.parseInt(dec, 10) : Number.parseInt(hex!, 16)
  return isXmlCodePoint(cp) ? String.fromCodePoint(cp) : ""
}

const decodeReferences = (s: string): string => (s.includes("&") ? s.replace(references, replaceReference) : s)

// Attribute-value normalisation (XML 1.0 §3.3.3): literal white space becomes
// a space before references are expanded, so `&#10;` survives as a newline.
const decodeAttribute = (s: string): string => decodeReferences(/[\t\n\r]/.test(s) ? s.replace(/[\t\n\r]/g, " ") : s)

type ParsedNode = Record<string, unknown>

const tagOf = (node: ParsedNode): string | undefined => {
  for (const key in node) {
    if (key !== ":@") return key
  }
  return undefined
}

const toEncoded = (shape: Shape, children: ReadonlyArray<ParsedNode>, attrs: unknown): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  if (attrs !== undefined) {
    const given = attrs as Record<string, string>
    for (const name of shape.attributes) {
      const value = given[name]
      if (typeof value === "string") out[name] = decodeAttribute(value)
    }
  }
  let text: string | undefined
  for (const node of children) {
    const tag = tagOf(node)
    if (tag === undefined) continue
    if (tag === "#text") {
      if (shape.text) text = (text ?? "") + decodeReferences(node[tag] as string)
    } else if (tag === "#cdata") {
      if (shape.text) {
        for (const part of node[tag] as ReadonlyArray<ParsedNode>) text = (text ?? "") + String(part["#text"] ?? "")
      }
    } else {
      const child = shape.childByName.get(tag)
      if (child === undefined) continue
      const value = toEncoded(child.shape, node[tag] as ReadonlyArray<ParsedNode>, node[":@"])
      if (child.many) {
        const list = out[child.name] as Array<unknown> | undefined
        if (list === undefined) out[child.name] = [value]
        else list.push(value)
      } else if (out[child.name] === undefined) {
        out[child.name] = value
      }
    }
  }
  if (text !== undefined) out[textKey] = text
  return out
}

const refuse = (xml: string, offset: number, reason: string): Refusal => {
  const { column, line } = position(xml, offset)
  return { message: `malformed XML at line ${line}, column ${column}: ${reason}`, line, column }
}

const utf8 = new TextDecoder("utf-8", { fatal: true })
const notUtf8: Refusal = { message: "malformed XML: the document is not valid UTF-8" }

const asText = (input: string | Uint8Array): Either.Either<string, Refusal> => {
  if (typeof input === "string") return Either.right(input)
  try {
    return Either.right(utf8.decode(input))
  } catch {
    return Either.left(notUtf8)
  }
}

// The same as `asText` (a leading byte-order mark dropped, then strict
// UTF-8), by Node's native checks: ASCII, the common case, is read as Latin-1.
const asTextFast = (input: string | Uint8Array): string | Refusal => {
  if (typeof input === "string") return input
  const bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength)
  const body = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.subarray(3) : bytes
  if (isAscii(body)) return body.toString("latin1")
  return isUtf8(body) ? body.toString("utf8") : notUtf8
}

const tooLarge = (input: string | Uint8Array, limits: DocumentLimits): Refusal | undefined => {
  // A string's UTF-8 size is at least its length, so only short ones need measuring.
  const size = typeof input === "string"
    ? (input.length > limits.maxBytes ? input.length : Buffer.byteLength(input, "utf8"))
    : input.byteLength
  return size > limits.maxBytes
    ? { message: `XML document too large: at least ${size} bytes, the limit is ${limits.maxBytes}` }
    : undefined
}

const wrongRoot = (document: Document, root: string): Refusal => ({
  message: `wrong document: expected a <${document.root}> element, found <${root}>`,
  line: 1
})

/** Reads a document within `limits` into the encoded object of its class, or says why not. */
export const parseDocument = (
  document: Document,
  input: string | Uint8Array,
  limits: DocumentLimits
): Either.Either<Record<string, unknown>, Refusal> => {
  const large = tooLarge(input, limits)
  if (large !== undefined) return Either.left(large)
  const decoded = asText(input)
  if (Either.isLeft(decoded)) return Either.left(decoded.left)
  const xml = decoded.right.charCodeAt(0) === 0xfeff ? decoded.right.slice(1) : decoded.right
  const scanned = scan(xml, limits)
  if (scanned._tag === "Refused") return Either.left(refuse(xml, scanned.offset, scanned.reason))
  if (scanned.root !== document.root) return Either.left(wrongRoot(document, scanned.root))
  let tree: ReadonlyArray<ParsedNode>
  try {
    tree = parser.parse(xml) as ReadonlyArray<ParsedNode>
  } catch (e) {
    return Either.left({ message: `malformed XML: ${e instanceof Error ? e.message : String(e)}` })
  }
  const root = tree.find((node) => tagOf(node) === document.root)
  if (root === undefined) {
    return Either.left({ message: `wrong document: no <${document.root}> element` })
  }
  return Either.right(toEncoded(document.shape, root[document.root] as ReadonlyArray<ParsedNode>, root[":@"]))
}

// The parser turns every line end (CR LF, or CR alone) into LF before it reads
// anything (XML 1.0 2.11); character references are expanded after.
const lineEnds = /\r\n?/g
const normaliseLineEnds = (s: string): string => (s.includes("\r") ? s.replace(lineEnds, "\n") : s)

// An attribute's value as the parser and `decodeAttribute` read it; most
// values have nothing to expand or normalise and are a slice.
const attributeValue = (xml: string, from: number, to: number): string => {
  for (let i = from; i < to; i++) {
    const c = xml.charCodeAt(i)
    if (c === 0x26 || c === 0x09 || c === 0x0a || c === 0x0d) {
      return decodeAttribute(normaliseLineEnds(xml.slice(from, to)))
    }
  }
  return xml.slice(from, to)
}

// Builds, while the scan checks the document, the encoded object that
// `toEncoded` makes from the parser's tree: the elements and attributes of
// the layout, unknown ones skipped, the first of a repeated single child.
const makeBuilder = (document: Document, xml: string) => {
  let depth = 0
  const shapes: Array<Shape | undefined> = []
  const nodes: Array<Record<string, unknown> | undefined> = []
  const texts: Array<string | undefined> = []
  let result: Record<string, unknown> | undefined
  const builder: Builder = {
    start: (name) => {
      let shape: Shape | undefined
      let node: Record<string, unknown> | undefined
      if (depth === 0) {
        if (name === document.root) {
          shape = document.shape
          node = result = {}
        }
      } else {
        const child = shapes[depth - 1]?.childByName.get(name)
        if (child !== undefined) {
          shape = child.shape
          node = {}
          const parent = nodes[depth - 1]!
          const siblings = parent[child.name] as Array<unknown> | undefined
          if (!child.many) {
            if (siblings === undefined) parent[child.name] = node
          } else if (siblings === undefined) {
            parent[child.name] = [node]
          } else {
            siblings.push(node)
          }
        }
      }
      shapes[depth] = shape
      nodes[depth] = node
      texts[depth] = undefined
      depth++
      return shape !== undefined && shape.attributes.length > 0
    },
    attribute: (name, from, to) => {
      if (shapes[depth - 1]!.attributeSet.has(name)) nodes[depth - 1]![name] = attributeValue(xml, from, to)
    },
    end: () => {
      depth--
      const text = texts[depth]
      if (text !== undefined) nodes[depth]![textKey] = text
    },
    text: (from, to, cdata) => {
      if (shapes[depth - 1]?.text !== true) return
      const raw = normaliseLineEnds(xml.slice(from, to))
      texts[depth - 1] = (texts[depth - 1] ?? "") + (cdata ? raw : decodeReferences(raw))
    }
  }
  return { builder, result: () => result }
}

/**
 * {@link parseDocument} without the parser: the scan builds the encoded
 * object as it checks the document. Same refusals; same objects wherever
 * the document is accepted (the codec's tests hold the two to that).
 */
export const readDocument = (
  document: Document,
  input: string | Uint8Array,
  limits: DocumentLimits
): Either.Either<Record<string, unknown>, Refusal> => {
  const large = tooLarge(input, limits)
  if (large !== undefined) return Either.left(large)
  const decoded = asTextFast(input)
  if (typeof decoded !== "string") return Either.left(decoded)
  const xml = decoded.charCodeAt(0) === 0xfeff ? decoded.slice(1) : decoded
  const { builder, result } = makeBuilder(document, xml)
  const scanned = scan(xml, limits, builder)
  if (scanned._tag === "Refused") return Either.left(refuse(xml, scanned.offset, scanned.reason))
  if (scanned.root !== document.root) return Either.left(wrongRoot(document, scanned.root))
  return Either.right(result()!)
}

// -----------------------------------------------------------------------------
// Encoding: encoded object -> text
// -----------------------------------------------------------------------------

const attributeEscapes: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  "\"": "&quot;",
  "\t": "&#9;",
  "\n": "&#10;",
  "\r": "&#13;"
}
const attributeSpecials = /[&<>"\t\n\r]/g

/** An attribute value as written between double quotes. */
export const escapeAttribute = (s: string): string => {
  attributeSpecials.lastIndex = 0
  return attributeSpecials.test(s) ? s.replace(attributeSpecials, (c) => attributeEscapes[c]!) : s
}

// Character data goes out as CDATA; "]]>" and carriage returns (which XML
// parsers turn into newlines) are written outside the CDATA sections.
/** Character data as written: CDATA sections. */
export const writeText = (s: string): string =>
  "<![CDATA[" + s.replace(/]]>|\r/g, (m) => (m === "\r" ? "]]>&#13;<![CDATA[" : "]]]]><![CDATA[>")) + "]]>"

const writeElement = (name: string, shape: Shape, value: Record<string, unknown>, indent: string): string => {
  let out = indent + "<" + name
  for (const attr of shape.attributes) {
    const v = value[attr]
    if (v !== undefined) out += " " + attr + "=\"" + escapeAttribute(v as string) + "\""
  }
  const text = shape.text ? (value[textKey] as string | undefined) : undefined
  let body = ""
  const inner = indent + " "
  for (const child of shape.children) {
    const v = value[child.name]
    if (v === undefined) continue
    if (child.many) {
      for (const item of v as ReadonlyArray<Record<string, unknown>>) {
        body += writeElement(child.name, child.shape, item, inner)
      }
    } else {
      body += writeElement(child.name, child.shape, v as Record<string, unknown>, inner)
    }
  }
  if (text === undefined && body === "") return out + "/>\n"
  return out + ">" + (text === undefined ? "" : writeText(text)) + (body === "" ? "" : "\n" + body + indent) + "</" + name + ">\n"
}

/** Writes the encoded object of a class as a document, starting with the XML declaration. */
export const writeDocument = (document: Document, encoded: Record<string, unknown>): string =>
  declaration + "\n" + writeElement(document.root, document.shape, encoded, "")

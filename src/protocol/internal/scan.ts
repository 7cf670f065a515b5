/**
 * A single pass over a document before it reaches the XML parser. It refuses
 * what the parser would let through or spend effort on: DOCTYPE and entity
 * declarations, characters XML cannot carry, undeclared or invalid
 * references, `<` inside attribute values, text or a second element outside
 * the root, truncation, and documents deeper or larger than the limits.
 */

/**
 * What a scan reports as it goes, to a caller that builds the document while
 * it is checked (the codec's fast path). Nothing reported means anything
 * until the scan says `Ok`: a refused document may have been reported in part.
 */
export interface Builder {
  /** A start tag's name; answers whether its attributes are wanted. */
  readonly start: (name: string) => boolean
  /** An attribute of the start tag just reported: its value is `xml.slice(from, to)`, as written. */
  readonly attribute: (name: string, from: number, to: number) => void
  /** The end of the element last started and not ended (a closing tag, or `/>`). */
  readonly end: () => void
  /** Character data inside an element: `xml.slice(from, to)` as written, or a CDATA section's content. */
  readonly text: (from: number, to: number, cdata: boolean) => void
}

/** Structural limits checked while scanning. */
export interface ScanLimits {
  readonly maxDepth: number
  readonly maxElements: number
}

/** The outcome of a scan: the root element's name, or what is wrong and where. */
export type ScanResult =
  | { readonly _tag: "Ok"; readonly root: string }
  | { readonly _tag: "Refused"; readonly offset: number; readonly reason: string }

const invalidChar = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u
const reference = /&(?:(amp|lt|gt|quot|apos)|#([0-9]{1,7})|#x([0-9a-fA-F]{1,6}));/y
const nameEnd = /[\s/>]/g
const nameStart = ":A-Z_a-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD\\u{10000}-\\u{EFFFF}"
const xmlName = new RegExp(`[${nameStart}][${nameStart}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040]*`, "uy")

const isAsciiNameStart = (c: number): boolean => (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x3a
const isAsciiNameChar = (c: number): boolean =>
  isAsciiNameStart(c) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e

// The XML name starting at `at`, or "" when none starts there. ASCII names
// (all of Omaha's) are read without the regular expression, which decides
// whenever a character outside ASCII is involved.
const nameAt = (xml: string, at: number): string => {
  let end = at
  if (isAsciiNameStart(xml.charCodeAt(at))) {
    end++
    while (isAsciiNameChar(xml.charCodeAt(end))) end++
    if (!(xml.charCodeAt(end) >= 0x80)) return xml.slice(at, end)
  } else if (!(xml.charCodeAt(at) >= 0x80)) {
    return ""
  }
  xmlName.lastIndex = at
  const m = xmlName.exec(xml)
  return m === null ? "" : m[0]
}

/** Where `char` next occurs at or after a position (-1 when it does not). */
type Finder = (from: number) => number

// Remembers its last answer, which holds for every start between that search's
// start and its answer: attribute values and text runs are checked one after
// another, and searching each to the end of the document anew was quadratic.
const finder = (xml: string, char: string): Finder => {
  let searchedFrom = Number.POSITIVE_INFINITY
  let found = -1
  return (from) => {
    if (from >= searchedFrom && (found === -1 || from <= found)) return found
    searchedFrom = from
    found = xml.indexOf(char, from)
    return found
  }
}
const nonWhitespace = /\S/g

const GT = 0x3e
const SLASH = 0x2f
const QUOTE = 0x22
const APOS = 0x27
const BANG = 0x21
const QUESTION = 0x3f
const EQUALS = 0x3d

/** True for a code point that XML 1.0 allows in a document. */
export const isXmlCodePoint = (cp: number): boolean =>
  cp === 0x9 || cp === 0xa || cp === 0xd ||
  (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff)

const refused = (offset: number, reason: string): ScanResult => ({ _tag: "Refused", offset, reason })

// Checks every `&` in xml[from, to): it must start a predefined entity or a
// character reference to a character XML allows.
const checkReferences = (xml: string, from: number, to: number, nextAmp: Finder): ScanResult | undefined => {
  for (let amp = nextAmp(from); amp !== -1 && amp < to; amp = nextAmp(amp + 1)) {
    reference.lastIndex = amp
    const m = reference.exec(xml)
    if (m === null || reference.lastIndex > to) {
      const entity = /^&([A-Za-z_][\w.-]{0,31});/.exec(xml.slice(amp, Math.min(to, amp + 34)))?.[1]
      return refused(
        amp,
        entity !== undefined
          ? `undeclared entity reference "&${entity};"`
          : "a bare \"&\" or a malformed character reference (write & as &amp;)"
      )
    }
    if (m[1] === undefined) {
      const cp = m[2] !== undefined ? Number.parseInt(m[2], 10) : Number.parseInt(m[3]!, 16)
      if (!isXmlCodePoint(cp)) return refused(amp, `character reference ${m[0]} names a character XML cannot carry`)
    }
  }
  return undefined
}

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d

type StartTag =
  | { readonly _tag: "Tag"; readonly name: string; readonly end: number; readonly selfClosing: boolean }
  | Extract<ScanResult, { _tag: "Refused" }>

// Reads `<name attr="value" ...>` or `.../>` at `lt`: the XML 1.0 production
// for start tags, with every attribute value checked for `<` and references.
const startTag = (xml: string, lt: number, nextLt: Finder, nextAmp: Finder, builder: Builder | undefined): StartTag => {
  const n = xml.length
  const name = nameAt(xml, lt + 1)
  let p = lt + 1 + name.length
  if (name.length === 0 || (p < n && !isSpace(xml.charCodeAt(p)) && xml.charCodeAt(p) !== SLASH && xml.charCodeAt(p) !== GT)) {
    nameEnd.lastIndex = lt + 1
    const end = nameEnd.exec(xml)?.index ?? n
    return { _tag: "Refused", offset: lt, reason: `invalid element name ${JSON.stringify(xml.slice(lt + 1, Math.min(end, lt + 41)))}` }
  }
  const wanted = builder !== undefined && builder.start(name)
  // Most tags have a few attributes: a list is cheaper then, a set beyond.
  let seen: Array<string> | Set<string> = []
  for (;;) {
    const before = p
    while (p < n && isSpace(xml.charCodeAt(p))) p++
    if (p >= n) return { _tag: "Refused", offset: lt, reason: "truncated document: a tag is not finished" }
    const c = xml.charCodeAt(p)
    if (c === GT) return { _tag: "Tag", name, end: p, selfClosing: false }
    if (c === SLASH) {
      if (xml.charCodeAt(p + 1) === GT) return { _tag: "Tag", name, end: p + 1, selfClosing: true }
      return { _tag: "Refused", offset: p, reason: `"/" inside <${name}> must end the tag` }
    }
    if (p === before) return { _tag: "Refused", offset: p, reason: `attributes of <${name}> must be separated by white space` }
    const attr = nameAt(xml, p)
    if (attr.length === 0) {
      return { _tag: "Refused", offset: p, reason: `unexpected ${JSON.stringify(xml[p])} in <${name}>` }
    }
    if (Array.isArray(seen) ? seen.includes(attr) : seen.has(attr)) {
      return { _tag: "Refused", offset: p, reason: `attribute ${attr} is repeated in <${name}>` }
    }
    if (!Array.isArray(seen)) seen.add(attr)
    else if (seen.push(attr) > 16) seen = new Set(seen)
    p += attr.length
    while (p < n && isSpace(xml.charCodeAt(p))) p++
    if (xml.charCodeAt(p) !== EQUALS) return { _tag: "Refused", offset: p, reason: `attribute ${attr} of <${name}> has no value` }
    p++
    while (p < n && isSpace(xml.charCodeAt(p))) p++
    const quote = xml.charCodeAt(p)
    if (quote !== QUOTE && quote !== APOS) {
      return p >= n
        ? { _tag: "Refused", offset: lt, reason: "truncated document: a tag is not finished" }
        : { _tag: "Refused", offset: p, reason: `the value of attribute ${attr} of <${name}> must be quoted` }
    }
    const close = xml.indexOf(quote === QUOTE ? "\"" : "'", p + 1)
    if (close === -1) return { _tag: "Refused", offset: p, reason: "truncated document: an attribute value is not closed" }
    const inner = nextLt(p + 1)
    if (inner !== -1 && inner < close) return { _tag: "Refused", offset: inner, reason: "\"<\" inside an attribute value" }
    const err = checkReferences(xml, p + 1, close, nextAmp)
    if (err !== undefined) return err as StartTag
    if (wanted) builder.attribute(attr, p + 1, close)
    p = close + 1
  }
}

const declaration =
  /^<\?xml\s+version\s*=\s*(["'])1\.[0-9]+\1(?:\s+encoding\s*=\s*(["'])([A-Za-z][A-Za-z0-9._-]*)\2)?(?:\s+standalone\s*=\s*(["'])(?:yes|no)\4)?\s*\?>$/

// The XML declaration: first in the document, well-formed, and declaring an
// encoding we read (the text has already been decoded as UTF-8).
const checkDeclaration = (text: string, first: boolean): string | undefined => {
  if (!first) return "the XML declaration must come first in the document"
  const m = declaration.exec(text)
  if (m === null || !text.startsWith("<?xml")) return "malformed XML declaration"
  const encoding = m[3]?.toLowerCase()
  if (encoding !== undefined && encoding !== "utf-8" && encoding !== "us-ascii") {
    return `unsupported encoding ${m[3]}: send UTF-8`
  }
  return undefined
}

// Where a processing instruction ends: the first "?>" outside quotes, as the
// parser reads it (a quote in an instruction's data runs to the next one).
const piEnd = (xml: string, from: number): number => {
  for (let i = from; i < xml.length; i++) {
    const c = xml.charCodeAt(i)
    if (c === QUOTE || c === APOS) {
      i = xml.indexOf(c === QUOTE ? "\"" : "'", i + 1)
      if (i === -1) return -1
    } else if (c === QUESTION && xml.charCodeAt(i + 1) === GT) {
      return i
    }
  }
  return -1
}

/** Scans `xml` (see the module header), reporting what it reads to `builder` if given; never throws. */
export const scan = (xml: string, limits: ScanLimits, builder?: Builder): ScanResult => {
  const bad = invalidChar.exec(xml)
  if (bad !== null) {
    return refused(bad.index, `character U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")} is not allowed in XML`)
  }
  const n = xml.length
  let i = 0
  let depth = 0
  const stack: Array<string> = []
  let elements = 0
  let root: string | undefined
  let rootClosed = false
  const nextLt = finder(xml, "<")
  const nextAmp = finder(xml, "&")
  while (i < n) {
    const lt = nextLt(i)
    const textEnd = lt === -1 ? n : lt
    if (textEnd > i) {
      if (depth === 0) {
        nonWhitespace.lastIndex = i
        const text = nonWhitespace.exec(xml)
        if (text !== null && text.index < textEnd) return refused(text.index, "text outside the root element")
      } else {
        const err = checkReferences(xml, i, textEnd, nextAmp)
        if (err !== undefined) return err
        if (builder !== undefined) builder.text(i, textEnd, false)
      }
    }
    if (lt === -1) break
    const next = xml.charCodeAt(lt + 1)
    if (next === BANG) {
      if (xml.startsWith("<!--", lt)) {
        const end = xml.indexOf("-->", lt + 4)
        if (end === -1) return refused(lt, "truncated document: a comment is not closed")
        i = end + 3
      } else if (xml.startsWith("<![CDATA[", lt)) {
        if (depth === 0) return refused(lt, "CDATA outside the root element")
        const end = xml.indexOf("]]>", lt + 9)
        if (end === -1) return refused(lt, "truncated document: a CDATA section is not closed")
        if (builder !== undefined) builder.text(lt + 9, end, true)
        i = end + 3
      } else {
        const what = /^<!(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)/i.exec(xml.slice(lt, lt + 12))?.[1]
        return refused(lt, what !== undefined
          ? `<!${what.toUpperCase()} is refused: documents may not declare a DTD or entities`
          : "markup declarations (<!...>) are refused")
      }
      continue
    }
    if (next === QUESTION) {
      if (nameAt(xml, lt + 2).length === 0) return refused(lt, "a processing instruction must start with a name")
      const end = piEnd(xml, lt + 2)
      if (end === -1) return refused(lt, "truncated document: a processing instruction is not closed")
      if (/^<\?xml(?=[\s?])/i.test(xml.slice(lt, lt + 6))) {
        const problem = checkDeclaration(xml.slice(lt, end + 2), lt === 0)
        if (problem !== undefined) return refused(lt, problem)
      }
      i = end + 2
      continue
    }
    if (next === SLASH) {
      const end = xml.indexOf(">", lt + 2)
      if (end === -1) return refused(lt, "truncated document: a closing tag is not finished")
      const closing = xml.slice(lt + 2, end).trimEnd()
      const open = stack.pop()
      if (open === undefined) return refused(lt, `closing tag </${closing.slice(0, 40)}> without an opening tag`)
      if (closing !== open) return refused(lt, `closing tag </${closing.slice(0, 40)}> does not match <${open}>`)
      if (builder !== undefined) builder.end()
      depth--
      if (depth === 0) rootClosed = true
      i = end + 1
      continue
    }
    // A start tag: its name, then attributes, each checked for form.
    if (rootClosed && depth === 0) return refused(lt, "more than one root element")
    const tag = startTag(xml, lt, nextLt, nextAmp, builder)
    if (tag._tag === "Refused") return tag
    const name = tag.name
    root ??= name
    if (++elements > limits.maxElements) return refused(lt, `more than ${limits.maxElements} elements`)
    const gt = tag.end
    if (tag.selfClosing) {
      if (builder !== undefined) builder.end()
      if (depth === 0) rootClosed = true
    } else if (++depth > limits.maxDepth) {
      return refused(lt, `elements nested deeper than ${limits.maxDepth} levels`)
    } else {
      stack.push(name)
    }
    i = gt + 1
  }
  if (root === undefined) return refused(0, "no root element (empty document)")
  if (!rootClosed) return refused(n, `truncated document: <${stack[stack.length - 1] ?? root}> is not closed`)
  return { _tag: "Ok", root }
}

/** The 1-based line and column of an offset in `text`. */
export const position = (text: string, offset: number): { readonly line: number; readonly column: number } => {
  let line = 1
  let lineStart = 0
  for (let nl = text.indexOf("\n"); nl !== -1 && nl < offset; nl = text.indexOf("\n", nl + 1)) {
    line++
    lineStart = nl + 1
  }
  return { line, column: offset - lineStart + 1 }
}

/**
 * Tolerant reading of a document the schema refused: which of its problems
 * cost the whole document and which only a value or an element. An optional
 * attribute whose value cannot be read is read as absent; an element whose
 * required attribute is missing or unreadable is skipped where its document
 * says so (`Document.skippable`), and refuses the document everywhere else.
 * Each value read as absent and each element skipped is one warning.
 */
import { Either, type ParseResult } from "effect"
import type * as Document from "./document.js"
import type { Shape } from "./shape.js"

/** A problem the schema found, in the encoded object's terms. */
export interface Issue {
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
}

/** What the encoded object became, and what was given up to get there. */
export interface Tolerated {
  readonly encoded: Record<string, unknown>
  readonly warnings: ReadonlyArray<string>
}

/** `request/app[2]/appid` for the path `["app", 1, "appid"]`. */
export const describePath = (root: string, path: ReadonlyArray<PropertyKey>): string =>
  [root, ...path.map((key) => (typeof key === "number" ? `[${key + 1}]` : String(key)))].join("/").replace(/\/\[/g, "[")

type Holder =
  | { readonly _tag: "Item"; readonly list: Array<unknown>; readonly index: number }
  | { readonly _tag: "Key"; readonly parent: Record<string, unknown>; readonly key: string }

/** Where an issue sits: the element that holds the attribute, and the elements above it. */
interface Place {
  readonly nodes: ReadonlyArray<Record<string, unknown>>
  readonly holder: Holder | undefined
  readonly elementPath: string
  readonly shape: Shape
  readonly attribute: string
  readonly elementName: string
}

const locate = (document: Document.Document, encoded: Record<string, unknown>, path: ReadonlyArray<PropertyKey>): Place | undefined => {
  let shape = document.shape
  let node = encoded
  let holder: Holder | undefined
  let elementName = document.root
  const names: Array<string> = []
  const nodes: Array<Record<string, unknown>> = [encoded]
  let i = 0
  while (i < path.length - 1) {
    const key = path[i]
    const child = typeof key === "string" ? shape.childByName.get(key) : undefined
    if (child === undefined) return undefined
    const value = node[child.name]
    if (child.many) {
      const index = path[i + 1]
      if (!Array.isArray(value) || typeof index !== "number") return undefined
      const item = value[index] as unknown
      if (typeof item !== "object" || item === null) return undefined
      holder = { _tag: "Item", list: value, index }
      node = item as Record<string, unknown>
      i += 2
    } else {
      if (typeof value !== "object" || value === null) return undefined
      holder = { _tag: "Key", parent: node, key: child.name }
      node = value as Record<string, unknown>
      i += 1
    }
    shape = child.shape
    elementName = child.name
    names.push(child.name)
    nodes.push(node)
  }
  const attribute = path[path.length - 1]
  if (i !== path.length - 1 || typeof attribute !== "string" || !shape.attributes.includes(attribute)) return undefined
  return { nodes, holder, elementPath: names.join("/"), shape, attribute, elementName }
}

/**
 * The encoded object with every tolerable problem of `issues` (all the
 * schema's issues, from a decode with `errors: "all"`) given up, or the
 * first problem that refuses the document.
 */
export const tolerate = (
  document: Document.Document,
  encoded: Record<string, unknown>,
  issues: ReadonlyArray<ParseResult.ArrayFormatterIssue>
): Either.Either<Tolerated, Issue> => {
  // One entry per path: a value outside a code table is one issue per member.
  const byPath = new Map<string, Array<ParseResult.ArrayFormatterIssue>>()
  for (const issue of issues) {
    const key = describePath(document.root, issue.path)
    const group = byPath.get(key)
    if (group === undefined) byPath.set(key, [issue])
    else group.push(issue)
  }
  type Found = { readonly place: Place; readonly where: string; readonly message: string }
  const absent: Array<Found> = []
  // By element: one element may miss several required attributes.
  const skippedBy = new Map<Record<string, unknown>, Found>()
  for (const [where, group] of byPath) {
    const first = group[0]!
    const place = locate(document, encoded, first.path)
    if (place === undefined) return Either.left(first)
    const value = place.nodes[place.nodes.length - 1]![place.attribute]
    const message = group.length > 1 && typeof value === "string" ? `unknown value ${JSON.stringify(value)}` : first.message
    if (!place.shape.required.has(place.attribute)) {
      absent.push({ place, where, message })
    } else if (place.holder !== undefined && document.skippable.has(place.elementPath)) {
      const node = place.nodes[place.nodes.length - 1]!
      if (!skippedBy.has(node)) skippedBy.set(node, { place, where, message })
    } else {
      return Either.left(first)
    }
  }
  // An element skipped in a list that must keep one refuses the document
  // when every element of that list goes.
  const skipped = [...skippedBy.values()]
  const gone = new Set(skippedBy.keys())
  for (const { place } of skipped) {
    const holder = place.holder!
    if (holder._tag === "Item" && document.skippable.get(place.elementPath) === "whileAnotherRemains") {
      if (holder.list.every((item) => gone.has(item as Record<string, unknown>))) {
        const first = skipped.find((s) => s.place.holder?._tag === "Item" && s.place.holder.list === holder.list)!
        return Either.left(byPath.get(first.where)![0]!)
      }
    }
  }
  const inSkipped = (place: Place) => place.nodes.some((node) => gone.has(node) && node !== place.nodes[place.nodes.length - 1])
  const warnings: Array<string> = []
  for (const { message, place, where } of absent) {
    if (gone.has(place.nodes[place.nodes.length - 1]!) || inSkipped(place)) continue
    delete place.nodes[place.nodes.length - 1]![place.attribute]
    warnings.push(`${where}: ${message}; read as absent`)
  }
  for (const { message, place, where } of skipped) {
    if (inSkipped(place)) continue
    warnings.push(`${where}: ${message}; <${place.elementName}> skipped`)
  }
  // Removed last, highest positions first, so that positions stay valid.
  const items = skipped.map((s) => s.place.holder!).filter((h) => h._tag === "Item")
  items.sort((a, b) => b.index - a.index)
  for (const holder of items) holder.list.splice(holder.index, 1)
  for (const holder of skipped.map((s) => s.place.holder!)) {
    if (holder._tag === "Key") delete holder.parent[holder.key]
  }
  return Either.right({ encoded, warnings })
}

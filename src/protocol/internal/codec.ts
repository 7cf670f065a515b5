/**
 * Decoding and encoding of whole documents, as `Xml.ts` exposes them: the
 * document layer of `document.ts`, then the class's fast path, with the schema
 * deciding wherever the fast path gives up. The schema-only variants are kept
 * beside them so tests can hold the two to the same results and errors.
 */
import { Either, ParseResult, Schema } from "effect"
import { Request } from "../Request.js"
import { Response } from "../Response.js"
import * as Document from "./document.js"
import * as Fast from "./fast.js"
import { invalid } from "./wire.js"

/** What a failed decode or encode reports: the fields of an `XmlError`. */
export interface Problem extends Document.Refusal {
  readonly path?: string
}

/** Both directions of one kind of document, with and without the fast path. */
export interface Codec<A> {
  readonly decode: (input: string | Uint8Array, limits: Document.DocumentLimits) => Either.Either<A, Problem>
  readonly encode: (value: A) => Either.Either<string, Problem>
  /** {@link decode} by the schema alone: the reference the fast path must match. */
  readonly decodeBySchema: (input: string | Uint8Array, limits: Document.DocumentLimits) => Either.Either<A, Problem>
  /** {@link encode} by the schema alone. */
  readonly encodeBySchema: (value: A) => Either.Either<string, Problem>
}

const describePath = (root: string, path: ReadonlyArray<PropertyKey>): string =>
  [root, ...path.map((key) => (typeof key === "number" ? `[${key + 1}]` : String(key)))].join("/").replace(/\/\[/g, "[")

const fromParseError = (root: string) => (error: ParseResult.ParseError): Problem => {
  const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
  if (issue === undefined) return { message: `invalid <${root}> document: ${error.message}` }
  const path = describePath(root, issue.path)
  return { message: `invalid <${root}> document at ${path}: ${issue.message}`, path }
}

/** The codec of a document carrying `schema`; the fast path is compiled here, once. */
export const make = <A, I>(document: Document.Document, schema: Schema.Schema<A, I>): Codec<A> => {
  // The Either variants: same checks as Schema.decodeUnknown / encode, without a fiber per document.
  const decodeSchema = Schema.decodeUnknownEither(schema)
  const encodeSchema = Schema.encodeEither(schema)
  const fast = Fast.compile(schema.ast)
  const onError = fromParseError(document.root)
  const write = (encoded: unknown) => Document.writeDocument(document, encoded as Record<string, unknown>)

  const bySchema = (encoded: Record<string, unknown>): Either.Either<A, Problem> =>
    Either.mapLeft(decodeSchema(encoded), onError)
  const byFastPath = (encoded: Record<string, unknown>): Either.Either<A, Problem> => {
    const value = fast === undefined ? invalid : fast.decode(encoded)
    return value !== invalid ? Either.right(value as A) : bySchema(encoded)
  }
  const encodeBySchema = (value: A): Either.Either<string, Problem> =>
    Either.map(Either.mapLeft(encodeSchema(value), onError), write)

  return {
    decode: (input, limits) => Either.flatMap(Document.parseDocument(document, input, limits), byFastPath),
    encode: (value) => {
      const encoded = fast === undefined ? invalid : fast.encode(value)
      return encoded !== invalid ? Either.right(write(encoded)) : encodeBySchema(value)
    },
    decodeBySchema: (input, limits) => Either.flatMap(Document.parseDocument(document, input, limits), bySchema),
    encodeBySchema
  }
}

/** Request documents. */
export const request: Codec<Request> = make(Document.requestDocument, Request)

/** Response documents. */
export const response: Codec<Response> = make(Document.responseDocument, Response)

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
import * as Tolerance from "./tolerance.js"
import { invalid } from "./wire.js"

/** What a failed decode or encode reports: the fields of an `XmlError`. */
export interface Problem extends Document.Refusal {
  readonly path?: string
}

/** A decoded document, and what was read as absent or skipped to decode it (see `tolerance.ts`). */
export interface Decoded<A> {
  readonly value: A
  readonly warnings: ReadonlyArray<string>
}

/** Both directions of one kind of document, with and without the fast path. */
export interface Codec<A> {
  readonly decode: (input: string | Uint8Array, limits: Document.DocumentLimits) => Either.Either<A, Problem>
  /** {@link decode}, with the warnings. */
  readonly read: (input: string | Uint8Array, limits: Document.DocumentLimits) => Either.Either<Decoded<A>, Problem>
  readonly encode: (value: A) => Either.Either<string, Problem>
  /** {@link encode}, keeping and reusing the writings of the instances in `reuse`. */
  readonly encodeReusing: (value: A, reuse: Fast.Reuse) => Either.Either<string, Problem>
  /** {@link decode} by the parser and the schema alone: the reference the fast path must match. */
  readonly decodeBySchema: (input: string | Uint8Array, limits: Document.DocumentLimits) => Either.Either<A, Problem>
  /** {@link read} by the schema alone. */
  readonly readBySchema: (input: string | Uint8Array, limits: Document.DocumentLimits) => Either.Either<Decoded<A>, Problem>
  /** {@link encode} by the schema alone. */
  readonly encodeBySchema: (value: A) => Either.Either<string, Problem>
}

const problemOf = (root: string, issue: Tolerance.Issue): Problem => {
  const path = Tolerance.describePath(root, issue.path)
  return { message: `invalid <${root}> document at ${path}: ${issue.message}`, path }
}

const fromParseError = (root: string) => (error: ParseResult.ParseError): Problem => {
  const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
  if (issue === undefined) return { message: `invalid <${root}> document: ${error.message}` }
  return problemOf(root, issue)
}

const valueOf = <A>(decoded: Decoded<A>): A => decoded.value

// The instances whose writings are kept (see `keepEncoding`).
const kept: Fast.Reuse = new WeakMap()

/** Keeps the writings of `instance` from now on, for every codec (see `Xml.keepEncoding`). */
export const keepEncoding = <A extends object>(instance: A): A => {
  if (!kept.has(instance)) kept.set(instance, new Map())
  return instance
}
const noWarnings: ReadonlyArray<string> = []

/** The codec of a document carrying `schema`; the fast path is compiled here, once. */
export const make = <A, I>(document: Document.Document, schema: Schema.Schema<A, I>): Codec<A> => {
  // The Either variants: same checks as Schema.decodeUnknown / encode, without a fiber per document.
  const decodeSchema = Schema.decodeUnknownEither(schema)
  const decodeSchemaAll = Schema.decodeUnknownEither(schema, { errors: "all" })
  const encodeSchema = Schema.encodeEither(schema)
  const fast = Fast.compile(schema.ast)
  const onError = fromParseError(document.root)
  const write = (encoded: unknown) => Document.writeDocument(document, encoded as Record<string, unknown>)

  // The schema decides; what it refuses is read again without whatever the
  // document can do without, and refused only when that is not enough.
  const bySchema = (encoded: Record<string, unknown>): Either.Either<Decoded<A>, Problem> => {
    const strict = decodeSchema(encoded)
    if (Either.isRight(strict)) return Either.right({ value: strict.right, warnings: [] })
    const all = decodeSchemaAll(encoded)
    if (Either.isRight(all)) return Either.right({ value: all.right, warnings: [] })
    const tolerated = Tolerance.tolerate(document, encoded, ParseResult.ArrayFormatter.formatErrorSync(all.left))
    if (Either.isLeft(tolerated)) return Either.left(problemOf(document.root, tolerated.left))
    return Either.map(
      Either.mapLeft(decodeSchema(tolerated.right.encoded), onError),
      (value) => ({ value, warnings: tolerated.right.warnings })
    )
  }
  const encodeBySchema = (value: A): Either.Either<string, Problem> =>
    Either.map(Either.mapLeft(encodeSchema(value), onError), write)
  const readBySchema = (input: string | Uint8Array, limits: Document.DocumentLimits) =>
    Either.flatMap(Document.parseDocument(document, input, limits), bySchema)
  // The scan builds the encoded object and the fast path the instances. A
  // refusal of the scan is the parser's too; anything the fast path gives up
  // on (a value to read as absent, an element to skip, an error to word) is
  // read again by the parser and the schema, which decide.
  const read = (input: string | Uint8Array, limits: Document.DocumentLimits): Either.Either<Decoded<A>, Problem> => {
    if (fast === undefined) return readBySchema(input, limits)
    const encoded = Document.readDocument(document, input, limits)
    if (Either.isLeft(encoded)) return Either.left(encoded.left)
    const value = fast.decode(encoded.right)
    return value !== invalid ? Either.right({ value: value as A, warnings: noWarnings }) : readBySchema(input, limits)
  }
  const encodeReusing = (value: A, reuse: Fast.Reuse | undefined): Either.Either<string, Problem> => {
    const written = fast === undefined ? invalid : fast.write(value, document.root, "", reuse)
    return written !== invalid ? Either.right(Document.declaration + "\n" + written) : encodeBySchema(value)
  }

  return {
    decode: (input, limits) => Either.map(read(input, limits), valueOf),
    read,
    encode: (value) => encodeReusing(value, kept),
    encodeReusing,
    decodeBySchema: (input, limits) => Either.map(readBySchema(input, limits), valueOf),
    readBySchema,
    encodeBySchema
  }
}

/** Request documents. */
export const request: Codec<Request> = make(Document.requestDocument, Request)

/** Response documents. */
export const response: Codec<Response> = make(Document.responseDocument, Response)

/**
 * The XML wire format of Omaha requests and responses: schemas from a
 * document string to the protocol classes and back, and Effect functions
 * over them. Decoding is hardened for input from the network: size, depth
 * and element limits, no DTDs or entity declarations, strict well-formedness,
 * and one typed error that says what is wrong and where. It is tolerant of
 * values it cannot read where the protocol can do without them: those are
 * read as absent, or their element skipped, with a warning.
 */
import { Effect, Either, ParseResult, Schema } from "effect"
import { Request } from "./Request.js"
import { Response } from "./Response.js"
import * as Codec from "./internal/codec.js"
import * as Document from "./internal/document.js"

/** A document that could not be decoded or encoded; the message says what and where. */
export class XmlError extends Schema.TaggedError<XmlError>()("XmlError", {
  message: Schema.String,
  line: Schema.optionalWith(Schema.Number, { exact: true }),
  column: Schema.optionalWith(Schema.Number, { exact: true }),
  path: Schema.optionalWith(Schema.String, { exact: true })
}) {}

/** Limits applied before a document is parsed. */
export interface Limits {
  /** Largest document in bytes (UTF-8). */
  readonly maxBytes: number
  /** Deepest element nesting. */
  readonly maxDepth: number
  /** Most elements in one document. */
  readonly maxElements: number
}

/** The limits used when none are given: 1 MiB, 32 levels, 10,000 elements. */
export const defaultLimits: Limits = { maxBytes: 1024 * 1024, maxDepth: 32, maxElements: 10_000 }

/** The XML declaration every encoded document starts with. */
export const declaration: string = Document.declaration

// -----------------------------------------------------------------------------
// Schemas and Effect functions
// -----------------------------------------------------------------------------

const fromXml = <A, I extends Record<string, unknown>>(
  document: Document.Document,
  schema: Schema.Schema<A, I>
): Schema.Schema<A, string> =>
  Schema.transformOrFail(Schema.String, schema, {
    strict: true,
    decode: (xml, _, ast) =>
      Either.match(Document.parseDocument(document, xml, defaultLimits), {
        onLeft: (e) => ParseResult.fail(new ParseResult.Type(ast, xml, e.message)),
        onRight: (encoded) => ParseResult.succeed(encoded as I)
      }),
    encode: (encoded) => ParseResult.succeed(Document.writeDocument(document, encoded))
  })

/** A request document (text) to a {@link Request} and back. */
export const RequestFromXml: Schema.Schema<Request, string> = fromXml(Document.requestDocument, Request)

/** A response document (text) to a {@link Response} and back. */
export const ResponseFromXml: Schema.Schema<Response, string> = fromXml(Document.responseDocument, Response)

const toXmlError = (problem: Codec.Problem): XmlError => new XmlError(problem)

/**
 * A decoded document, and what was given up to read it: each value read as
 * absent and each element skipped (see the README's "Reading tolerantly"),
 * as `path: what was wrong; what was done`.
 */
export interface Decoded<A> {
  readonly value: A
  readonly warnings: ReadonlyArray<string>
}

/** {@link decodeRequest}, with the warnings. */
export const decodeRequestWithWarnings = (
  input: string | Uint8Array,
  limits: Limits = defaultLimits
): Effect.Effect<Decoded<Request>, XmlError> =>
  Effect.suspend(() => Either.mapLeft(Codec.request.read(input, limits), toXmlError))

/** {@link decodeResponse}, with the warnings. */
export const decodeResponseWithWarnings = (
  input: string | Uint8Array,
  limits: Limits = defaultLimits
): Effect.Effect<Decoded<Response>, XmlError> =>
  Effect.suspend(() => Either.mapLeft(Codec.response.read(input, limits), toXmlError))

/**
 * Keeps the encoding of a protocol instance and reuses it wherever the
 * instance is encoded again (it is written once per element name and
 * depth), for parts of documents that repeat: a server's noupdate answer,
 * an offered update, its day start of the second. Instances are never
 * changed, so a kept encoding cannot go stale; an answer that changes is a
 * new instance. The keeping ends with the instance. Returns `instance`.
 */
export const keepEncoding: <A extends object>(instance: A) => A = Codec.keepEncoding

/** Decodes a request document (text or UTF-8 bytes) within `limits`. */
export const decodeRequest = (input: string | Uint8Array, limits: Limits = defaultLimits): Effect.Effect<Request, XmlError> =>
  Effect.suspend(() => Either.mapLeft(Codec.request.decode(input, limits), toXmlError))

/** Encodes a request as a document starting with the XML declaration. */
export const encodeRequest = (request: Request): Effect.Effect<string, XmlError> =>
  Effect.suspend(() => Either.mapLeft(Codec.request.encode(request), toXmlError))

/** Decodes a response document (text or UTF-8 bytes) within `limits`. */
export const decodeResponse = (input: string | Uint8Array, limits: Limits = defaultLimits): Effect.Effect<Response, XmlError> =>
  Effect.suspend(() => Either.mapLeft(Codec.response.decode(input, limits), toXmlError))

/** Encodes a response as a document starting with the XML declaration. */
export const encodeResponse = (response: Response): Effect.Effect<string, XmlError> =>
  Effect.suspend(() => Either.mapLeft(Codec.response.encode(response), toXmlError))

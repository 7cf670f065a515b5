/**
 * The admin API's error bodies: `{"error": "<tag>", "message": "<one line>"}`
 * with the HTTP status each tag stands for. Handlers fail with these; the
 * API answers every other failure (a body that does not decode, an unknown
 * route, a defect) with one of them too, so a client never meets another
 * shape.
 */
import { HttpApiSchema, HttpServerResponse } from "@effect/platform"
import { Schema } from "effect"

const fields = <const Tag extends string>(tag: Tag) => ({ error: Schema.tag(tag), message: Schema.String })

/** The request is not valid: its body, path or query does not match the API, or its JSON does not parse. */
export class InvalidRequest extends Schema.Class<InvalidRequest>("InvalidRequest")(
  fields("InvalidRequest"),
  HttpApiSchema.annotations({ status: 400, description: "The request does not match the API (body, path or query)" })
) {}

/** No token, or one the server does not know. */
export class Unauthorized extends Schema.Class<Unauthorized>("Unauthorized")(
  fields("Unauthorized"),
  HttpApiSchema.annotations({ status: 401, description: "Missing or unknown bearer token" })
) {}

/** The token's role may not do this (a viewer writing). */
export class Forbidden extends Schema.Class<Forbidden>("Forbidden")(
  fields("Forbidden"),
  HttpApiSchema.annotations({ status: 403, description: "The token's role may not do this" })
) {}

/** What the request names does not exist. */
export class NotFound extends Schema.Class<NotFound>("NotFound")(
  fields("NotFound"),
  HttpApiSchema.annotations({ status: 404, description: "What the request names does not exist" })
) {}

/** The write clashes with what exists: a key taken, or a row still in use. */
export class Conflict extends Schema.Class<Conflict>("Conflict")(
  fields("Conflict"),
  HttpApiSchema.annotations({ status: 409, description: "A key already taken, or something still in use" })
) {}

/** The body is larger than the server accepts. */
export class PayloadTooLarge extends Schema.Class<PayloadTooLarge>("PayloadTooLarge")(
  fields("PayloadTooLarge"),
  HttpApiSchema.annotations({ status: 413, description: "The body is over the size limit" })
) {}

/** The body is not of a type the endpoint takes. */
export class UnsupportedMediaType extends Schema.Class<UnsupportedMediaType>("UnsupportedMediaType")(
  fields("UnsupportedMediaType"),
  HttpApiSchema.annotations({ status: 415, description: "The endpoint takes application/json" })
) {}

/** The write refers to something that does not exist (a channel pointing to a missing package version). */
export class MissingReference extends Schema.Class<MissingReference>("MissingReference")(
  fields("MissingReference"),
  HttpApiSchema.annotations({ status: 422, description: "The body refers to something that does not exist" })
) {}

/** The server failed; the message says what it was doing. */
export class Internal extends Schema.Class<Internal>("Internal")(
  fields("Internal"),
  HttpApiSchema.annotations({ status: 500, description: "The server failed" })
) {}

/** The server cannot answer now (its database is unreachable). */
export class Unavailable extends Schema.Class<Unavailable>("Unavailable")(
  fields("Unavailable"),
  HttpApiSchema.annotations({ status: 503, description: "The server cannot answer now" })
) {}

/** Any error body of the API. */
export type ApiError =
  | InvalidRequest
  | Unauthorized
  | Forbidden
  | NotFound
  | Conflict
  | PayloadTooLarge
  | UnsupportedMediaType
  | MissingReference
  | Internal
  | Unavailable

const statuses: Record<ApiError["error"], number> = {
  InvalidRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  Conflict: 409,
  PayloadTooLarge: 413,
  UnsupportedMediaType: 415,
  MissingReference: 422,
  Internal: 500,
  Unavailable: 503
}

/** True for the API's error bodies. */
export const isApiError = (u: unknown): u is ApiError =>
  typeof u === "object" && u !== null && "error" in u && typeof u.error === "string" && u.error in statuses &&
  "message" in u && typeof u.message === "string"

/** The HTTP status of an error body. */
export const statusOf = (error: ApiError): number => statuses[error.error]

/** One line of text, whatever the message was. */
export const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, "; ").trim()

/** The response for an error body; `close` asks the client to drop the connection (an unread body). */
export const toResponse = (error: ApiError, close = false): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(
    { error: error.error, message: oneLine(error.message) },
    { status: statusOf(error), headers: close ? { connection: "close" } : {} }
  )

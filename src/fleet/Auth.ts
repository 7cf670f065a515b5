/**
 * Bearer tokens for the admin API. A token is `fleet_` and 43 characters of
 * base64url (32 random bytes); the store keeps only its SHA-256 (hex), its
 * role and a name. `admin` tokens may do anything; `viewer` tokens may
 * only read (GET and HEAD): any other method is answered 403. A missing,
 * malformed or unknown token is answered 401.
 */
import { HttpApiMiddleware, HttpApiSecurity, HttpServerRequest } from "@effect/platform"
import { Context, Effect, Layer, Option, Schema } from "effect"
import * as Crypto from "node:crypto"
import { Forbidden, Internal, Unauthorized } from "./ApiError.js"
import type { ApiToken, Role } from "./Model.js"
import { Store } from "./Store.js"

/** The token of the request being served. */
export class Caller extends Context.Tag("effect-omaha/fleet/Auth/Caller")<Caller, ApiToken>() {}

/** Checks the request's bearer token and its role against the request's method. */
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("effect-omaha/fleet/Auth/Authentication", {
  failure: Schema.Union(Unauthorized, Forbidden, Internal),
  provides: Caller,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

const tokenPattern = /^fleet_[A-Za-z0-9_-]{43}$/
const headerPattern = /^Bearer +(\S+) *$/i

/** The SHA-256 (hex) of a token: what the store keeps. */
export const hashToken = (token: string): string => Crypto.createHash("sha256").update(token, "utf8").digest("hex")

/** A new random token. */
export const generateToken: Effect.Effect<string> = Effect.sync(() => `fleet_${Crypto.randomBytes(32).toString("base64url")}`)

/** Methods a viewer may use. */
export const readMethods: ReadonlySet<string> = new Set(["GET", "HEAD"])

/** Whether a role may use a method. */
export const allows = (role: Role, method: string): boolean => role === "admin" || readMethods.has(method)

/** Creates a token with a role: stores its hash and answers the token itself, which is never stored. */
export const createToken = Effect.fn("Auth.createToken")(function*(input: { readonly role: Role; readonly name?: string | undefined }) {
  const store = yield* Store
  const token = yield* generateToken
  const stored = yield* store.createToken({ hash: hashToken(token), role: input.role, name: input.name ?? "" })
  return { token, stored }
})

/**
 * The token of an `Authorization` header, checked against the store (any
 * role): the middleware's check, and `/metrics`'.
 */
export const authenticate = (
  store: Store,
  header: string | undefined
): Effect.Effect<ApiToken, Unauthorized | Internal> =>
  Effect.gen(function*() {
    if (header === undefined || header === "") {
      return yield* Effect.fail(new Unauthorized({ message: "missing token: send Authorization: Bearer <token>" }))
    }
    const token = headerPattern.exec(header)?.[1]
    if (token === undefined || !tokenPattern.test(token)) {
      return yield* Effect.fail(
        new Unauthorized({ message: "malformed Authorization header: send Authorization: Bearer <token>" })
      )
    }
    const found = yield* store.useToken(hashToken(token)).pipe(
      Effect.catchAll((e) =>
        Effect.zipRight(
          Effect.logError("token lookup failed", e),
          Effect.fail(new Internal({ message: "could not check the token" }))
        )
      )
    )
    if (Option.isNone(found)) return yield* Effect.fail(new Unauthorized({ message: "unknown token" }))
    return found.value
  })

/** The middleware's implementation over the store. */
export const layer: Layer.Layer<Authentication, never, Store> = Layer.effect(
  Authentication,
  Effect.gen(function*() {
    const store = yield* Store
    return {
      bearer: () =>
        Effect.gen(function*() {
          const request = yield* HttpServerRequest.HttpServerRequest
          const found = yield* authenticate(store, request.headers["authorization"])
          if (!allows(found.role, request.method)) {
            return yield* Effect.fail(
              new Forbidden({ message: `a ${found.role} token may only read: ${request.method} needs an admin token` })
            )
          }
          return found
        })
    }
  })
)

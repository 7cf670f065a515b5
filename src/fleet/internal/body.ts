/**
 * Request bodies read with a size cap that still lets the server answer.
 * @effect/platform's own limits destroy the request stream when a body runs
 * over, which resets the connection before any 413 can be sent. Here a
 * body over the cap stops being read (the rest is discarded, never
 * destroyed), so the caller can answer with a JSON error and
 * `Connection: close`; a client that goes away mid-body fails the read
 * with `BodyAborted`.
 */
import type { HttpServerRequest } from "@effect/platform"
import { Effect, Option, Schema, Stream } from "effect"
import { Readable } from "node:stream"

/** A request body longer than the cap. */
export class BodyTooLarge extends Schema.TaggedError<BodyTooLarge>()("BodyTooLarge", {
  limit: Schema.Number
}) {
  override get message(): string {
    return `the request body is over the ${this.limit}-byte limit`
  }
}

/** The client stopped sending before the body was complete. */
export class BodyAborted extends Schema.TaggedError<BodyAborted>()("BodyAborted", {
  reason: Schema.String
}) {
  override get message(): string {
    return `the request body was cut off: ${this.reason}`
  }
}

// Reads one chunk from a paused Node stream: some bytes, None at the end.
const readChunk = (source: Readable): Effect.Effect<Option.Option<Buffer>, BodyAborted> =>
  Effect.async<Option.Option<Buffer>, BodyAborted>((resume) => {
    const attempt = (): boolean => {
      const chunk = source.read() as Buffer | null
      if (chunk !== null) {
        resume(Effect.succeed(Option.some(chunk)))
        return true
      }
      if (source.readableEnded) {
        resume(Effect.succeed(Option.none()))
        return true
      }
      if (source.destroyed || source.errored !== null) {
        resume(Effect.fail(new BodyAborted({ reason: source.errored?.message ?? "the connection closed" })))
        return true
      }
      return false
    }
    if (attempt()) return
    const cleanup = () => {
      source.off("readable", onReadable)
      source.off("end", onReadable)
      source.off("error", onError)
      source.off("close", onClose)
    }
    const onReadable = () => {
      if (attempt()) cleanup()
    }
    const onError = (error: Error) => {
      cleanup()
      resume(Effect.fail(new BodyAborted({ reason: error.message })))
    }
    const onClose = () => {
      if (attempt()) cleanup()
      else {
        cleanup()
        resume(Effect.fail(new BodyAborted({ reason: "the connection closed" })))
      }
    }
    source.on("readable", onReadable)
    source.on("end", onReadable)
    source.on("error", onError)
    source.on("close", onClose)
    return Effect.sync(cleanup)
  })

/** The Node stream under a request, when the server is Node's. */
const nodeSource = (request: HttpServerRequest.HttpServerRequest): Readable | undefined =>
  request.source instanceof Readable ? request.source : undefined

/**
 * The request's body as a stream of at most `limit` bytes, failing with
 * `BodyTooLarge` past that. Whatever is left unread when the stream stops
 * early is discarded, so the connection stays able to carry an answer.
 */
export const stream = (
  request: HttpServerRequest.HttpServerRequest,
  limit: number
): Stream.Stream<Uint8Array, BodyTooLarge | BodyAborted> => {
  const source = nodeSource(request)
  if (source === undefined) {
    return request.stream.pipe(
      Stream.mapError((e) => new BodyAborted({ reason: e.message })),
      Stream.mapAccumEffect(0, (total, chunk) =>
        total + chunk.byteLength > limit
          ? Effect.fail(new BodyTooLarge({ limit }))
          : Effect.succeed([total + chunk.byteLength, chunk] as const))
    )
  }
  let total = 0
  return Stream.repeatEffectOption(
    Effect.flatMap(Effect.mapError(readChunk(source), Option.some), (chunk) => {
      if (Option.isNone(chunk)) return Effect.fail(Option.none())
      total += chunk.value.byteLength
      return total > limit
        ? Effect.fail(Option.some<BodyTooLarge | BodyAborted>(new BodyTooLarge({ limit })))
        : Effect.succeed(new Uint8Array(chunk.value.buffer, chunk.value.byteOffset, chunk.value.byteLength))
    })
  ).pipe(
    Stream.ensuring(Effect.sync(() => {
      // Discard what was not read, so Node can finish the exchange.
      if (!source.readableEnded && !source.destroyed) source.resume()
    }))
  )
}

/** The whole body, at most `limit` bytes. */
export const read = (
  request: HttpServerRequest.HttpServerRequest,
  limit: number
): Effect.Effect<Uint8Array, BodyTooLarge | BodyAborted> =>
  Effect.map(Stream.runCollect(stream(request, limit)), (chunks) => {
    const parts = [...chunks]
    return parts.length === 1 ? parts[0]! : new Uint8Array(Buffer.concat(parts))
  })

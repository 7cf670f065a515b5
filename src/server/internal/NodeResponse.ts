/**
 * Writing a response on Node's HTTP server with its lifetime tied to its
 * connection: a response pipelined behind another gets no `close` event
 * when the connection goes (Node emits it only on the response that holds
 * the socket), so work for it is tied to the socket itself.
 */
import { Effect } from "effect"
import type * as Http from "node:http"
import type * as Net from "node:net"
import type { Lease } from "./BufferPool.js"

// One `close` listener per connection, however many requests wait on it.
const watchers = new WeakMap<Net.Socket, Set<() => void>>()

const onClose = (socket: Net.Socket, f: () => void): () => void => {
  let set = watchers.get(socket)
  if (set === undefined) {
    const fresh = new Set<() => void>()
    watchers.set(socket, fresh)
    socket.once("close", () => {
      watchers.delete(socket)
      for (const g of fresh) g()
    })
    set = fresh
  }
  set.add(f)
  return () => set.delete(f)
}

// Resolves once the response holds the connection (at once unless it is
// queued behind an earlier response on the same connection).
const turn = (response: Http.ServerResponse): Effect.Effect<void> =>
  response.socket !== null ? Effect.void : Effect.async<void>((resume) => {
    const go = () => resume(Effect.void)
    response.once("socket", go)
    return Effect.sync(() => response.off("socket", go))
  })

/**
 * Runs `self` once the response's turn on its connection has come, and
 * interrupts it if the connection closes first or meanwhile (so its scoped
 * resources, an open file say, are released).
 */
export const whileConnected = (request: Http.IncomingMessage, response: Http.ServerResponse) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A | void, E, R> =>
  Effect.withFiberRuntime<A | void, E, R>((fiber) => {
    const socket = request.socket
    if (socket.destroyed) return Effect.void
    const off = onClose(socket, () => fiber.unsafeInterruptAsFork(fiber.id()))
    return Effect.ensuring(Effect.zipRight(turn(response), self), Effect.sync(off))
  })

/**
 * Writes one chunk and waits until the socket has taken all of it, then
 * releases its buffer for reuse. A write that fails means the connection is
 * going: the response is destroyed and the wait ends with the interruption
 * its closing brings. If the wait ends before the socket reported back, the
 * buffer is forfeited, since the socket may still hold it.
 */
export const sendChunk = (response: Http.ServerResponse, chunk: Uint8Array, lease: Lease): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (response.socket === null || response.socket.destroyed) {
      lease.release()
      return
    }
    response.write(chunk, (error) => {
      lease.release()
      if (error === undefined || error === null) resume(Effect.void)
      else response.destroy()
    })
    return Effect.sync(() => lease.forfeit())
  })

/**
 * Read buffers for payload downloads, with a bound on their memory: at most
 * `count` large buffers exist; when all are out, a chunk goes into a small
 * buffer. Both kinds are reused; of the small ones, at most `count` are kept
 * once they come back, the rest left to the collector.
 */
export class BufferPool {
  private readonly large: Array<Buffer> = []
  private readonly small: Array<Buffer> = []
  private largeOut = 0

  constructor(readonly size: number, readonly count: number, readonly smallSize: number) {}

  /** A buffer whose contents are not cleared (write before reading it), with the way to hand it back. */
  take(): Lease {
    if (this.large.length > 0 || this.largeOut < this.count) {
      this.largeOut++
      return new Lease(this, this.large.pop() ?? Buffer.allocUnsafeSlow(this.size))
    }
    return new Lease(this, this.small.pop() ?? Buffer.allocUnsafeSlow(this.smallSize))
  }

  /** Large buffers handed out, and buffers of each size waiting for reuse. */
  get stats(): { readonly largeOut: number; readonly largeIdle: number; readonly smallIdle: number } {
    return { largeOut: this.largeOut, largeIdle: this.large.length, smallIdle: this.small.length }
  }

  /** @internal */
  settle(buffer: Buffer, reuse: boolean): void {
    if (buffer.length === this.size) {
      this.largeOut--
      if (reuse) this.large.push(buffer)
    } else if (reuse && this.small.length < this.count) {
      this.small.push(buffer)
    }
  }
}

/** One buffer taken from a pool; whichever of `release` and `forfeit` comes first counts. */
export class Lease {
  private settled = false

  constructor(private readonly pool: BufferPool, readonly buffer: Buffer) {}

  /** Nothing refers to the buffer's bytes any more: it may be handed out again. */
  release(): void {
    if (this.settled) return
    this.settled = true
    this.pool.settle(this.buffer, true)
  }

  /** The buffer may still be referred to (a write that never reported back): it is left to the collector. */
  forfeit(): void {
    if (this.settled) return
    this.settled = true
    this.pool.settle(this.buffer, false)
  }
}

import { describe, expect, it } from "@effect/vitest"
import { BufferPool } from "../../../src/server/internal/BufferPool.js"

describe("BufferPool", () => {
  it("hands out at most `count` large buffers, then small ones, and reuses what comes back", () => {
    const pool = new BufferPool(1024, 4, 64)
    const leases = Array.from({ length: 6 }, () => pool.take())
    expect(leases.map((l) => l.buffer.length)).toEqual([1024, 1024, 1024, 1024, 64, 64])
    expect(pool.stats).toEqual({ largeOut: 4, largeIdle: 0, smallIdle: 0 })
    for (const lease of leases) lease.release()
    expect(pool.stats).toEqual({ largeOut: 0, largeIdle: 4, smallIdle: 2 })
    const again = pool.take()
    expect(leases.slice(0, 4).some((l) => l.buffer === again.buffer)).toBe(true)
  })

  it("forgets a forfeited buffer, so a late release cannot hand it out again", () => {
    const pool = new BufferPool(1024, 2, 64)
    const lease = pool.take()
    lease.forfeit()
    lease.release()
    expect(pool.stats).toEqual({ largeOut: 0, largeIdle: 0, smallIdle: 0 })
    expect(pool.take().buffer).not.toBe(lease.buffer)
  })

  it("keeps at most `count` small buffers once they come back", () => {
    const pool = new BufferPool(1024, 1, 64)
    const leases = Array.from({ length: 5 }, () => pool.take())
    for (const lease of leases) lease.release()
    expect(pool.stats).toEqual({ largeOut: 0, largeIdle: 1, smallIdle: 1 })
  })
})

import { describe, expect, it } from "@effect/vitest"
import { Effect, pipe, TestClock } from "effect"
import { Request, Response } from "effect-omaha"

describe("Response", () => {
  it("counts daystart from local midnight and from 2007-01-01", () => {
    expect(Response.dayStartAt(new Date(2007, 0, 1, 0, 0, 0))).toStrictEqual(
      new Response.DayStart({ elapsedSeconds: 0, elapsedDays: 0 })
    )
    expect(Response.dayStartAt(new Date(2007, 0, 2, 13, 37, 5))).toStrictEqual(
      new Response.DayStart({ elapsedSeconds: 13 * 3600 + 37 * 60 + 5, elapsedDays: 1 })
    )
    expect(Response.dayStartAt(new Date(2026, 10, 23, 23, 59, 59)).elapsedDays).toBe(7266)
  })

  it.effect("makes a response with the clock's daystart", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(new Date(2026, 10, 23, 6, 30, 0).getTime())
      const response = yield* Response.makeNow("effect-omaha")
      expect(response.protocol).toBe("3.0")
      expect(response.server).toBe("effect-omaha")
      expect(response.dayStart).toStrictEqual(new Response.DayStart({ elapsedSeconds: 6.5 * 3600, elapsedDays: 7266 }))
    }))

  it("adds and finds apps without changing the original", () => {
    const empty = Response.make({ server: "s" })
    const one = pipe(empty, Response.addApp(new Response.AppResponse({ appId: "a", status: "ok" })))
    expect(empty.apps).toEqual([])
    expect(Response.findApp(one, "a")?.status).toBe("ok")
    expect(Response.findApp(one, "b")).toBeUndefined()
    const request = pipe(Request.make(), Request.addApp(new Request.AppRequest({ appId: "x" })))
    const withEvent = Request.addEvent(request.apps[0]!, new Request.EventRequest({ eventType: 3, eventResult: 1 }))
    expect(request.apps[0]!.events).toEqual([])
    expect(withEvent.events.length).toBe(1)
    expect(Request.findApp(request, "x")?.appId).toBe("x")
  })
})

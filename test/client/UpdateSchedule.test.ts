import { describe, expect, it } from "@effect/vitest"
import { Chunk, Clock, Duration, Effect, Exit, Fiber, Layer, Logger, Option, Queue, Random, Scope, TestClock } from "effect"
import { AppClient, OmahaClient, Response, UpdateSchedule } from "effect-omaha"

const minute = 60_000

interface Run {
  readonly at: number
  readonly source: UpdateSchedule.CheckSource
}

/**
 * Runs `runPeriodic` in the background with a check that records when and why
 * it ran and then does `outcome(n)` for its n-th run (0-based).
 */
const periodic = <A, E>(outcome: (n: number) => Effect.Effect<A, E>, options: UpdateSchedule.PeriodicOptions = {}) =>
  Effect.gen(function*() {
    const runs = yield* Queue.unbounded<Run>()
    let n = 0
    const check = (source: UpdateSchedule.CheckSource) =>
      Effect.flatMap(Clock.currentTimeMillis, (at) => Effect.zipRight(Queue.offer(runs, { at, source }), outcome(n++)))
    const trigger = yield* UpdateSchedule.Trigger
    const fiber = yield* Effect.fork(UpdateSchedule.runPeriodic(check, options))
    const taken = Effect.map(Queue.takeAll(runs), Chunk.toReadonlyArray)
    return { fiber, trigger, taken, next: Queue.take(runs) }
  })

const noUpdate = (pollInterval?: number) =>
  Effect.succeed(
    new AppClient.NoUpdate({
      update: new Response.UpdateResponse({ status: "noupdate", ...(pollInterval === undefined ? {} : { pollInterval }) })
    })
  )

const httpError = (status: number) =>
  Effect.fail(new OmahaClient.HttpStatusError({ url: "http://x/v1/update/", status, attempts: 7 }))

/** The waits between consecutive runs, in minutes. */
const gaps = (runs: ReadonlyArray<Run>) => runs.slice(1).map((run, i) => (run.at - runs[i]!.at) / minute)

const expectWithin = (values: ReadonlyArray<number>, low: number, high: number) => {
  for (const value of values) {
    expect(value).toBeGreaterThanOrEqual(low)
    expect(value).toBeLessThanOrEqual(high)
  }
}

const withTrigger = <A, E>(effect: Effect.Effect<A, E, UpdateSchedule.Trigger | Scope.Scope>) =>
  Effect.scoped(Effect.provide(effect, UpdateSchedule.Trigger.Default))

describe("UpdateSchedule", () => {
  it.effect("fuzzyDuration is uniform in [d - fuzz/2, d + fuzz/2] and never negative", () =>
    Effect.gen(function*() {
      const draws: Array<number> = []
      for (let i = 0; i < 5000; i++) draws.push(Duration.toMillis(yield* UpdateSchedule.fuzzyDuration("45 minutes", "10 minutes")))
      expectWithin(draws, 40 * minute, 50 * minute)
      // Uniform: each tenth of the range gets its share (500 expected; a seeded generator keeps this exact).
      const tenths = Array.from({ length: 10 }, (_, k) => draws.filter((d) => Math.floor((d - 40 * minute) / minute) === k).length)
      expectWithin(tenths, 400, 600)
      const short: Array<number> = []
      for (let i = 0; i < 1000; i++) short.push(Duration.toMillis(yield* UpdateSchedule.fuzzyDuration("1 minute", "10 minutes")))
      expectWithin(short, 0, 6 * minute)
      // Four tenths of [-4, 6] min is below zero: those draws are 0.
      expectWithin([short.filter((d) => d === 0).length], 300, 500)
    }).pipe(Effect.withRandom(Random.make("fuzzy"))))

  it.effect("first checks come 2..12 minutes after start, over 200 starts", () =>
    withTrigger(Effect.gen(function*() {
      const loops = []
      for (let i = 0; i < 200; i++) loops.push(yield* Effect.provide(periodic(() => noUpdate()), UpdateSchedule.Trigger.Default))
      yield* TestClock.adjust("12 minutes")
      const firsts = []
      for (const loop of loops) {
        const runs = yield* loop.taken
        expect(runs.length).toBe(1)
        expect(runs[0]!.source).toBe("scheduler")
        firsts.push(runs[0]!.at / minute)
        yield* Fiber.interrupt(loop.fiber)
      }
      expectWithin(firsts, 2, 12)
      // The draws spread over the window instead of bunching.
      expect(Math.min(...firsts)).toBeLessThan(3)
      expect(Math.max(...firsts)).toBeGreaterThan(11)
    })))

  it.effect("later checks come every 40..50 minutes, over 200 checks", () =>
    withTrigger(Effect.gen(function*() {
      const loop = yield* periodic(() => noUpdate())
      yield* TestClock.adjust(Duration.minutes(12 + 200 * 50))
      const runs = yield* loop.taken
      expect(runs.length).toBeGreaterThan(200)
      const waits = gaps(runs)
      expectWithin(waits, 40, 50)
      expect(Math.min(...waits)).toBeLessThan(41)
      expect(Math.max(...waits)).toBeGreaterThan(49)
    })))

  it.effect("a server PollInterval replaces the interval, clamped to 45 min .. 4 h", () =>
    withTrigger(Effect.gen(function*() {
      // 60 s is raised to 45 min, 2 h is kept, 1 day is cut to 4 h, and none means 45 min again.
      const polls = [60, 7200, 86_400, undefined, 3 * 3600]
      const loop = yield* periodic((n) => noUpdate(polls[n % polls.length]))
      yield* TestClock.adjust("40 hours")
      const waits = gaps(yield* loop.taken)
      expect(waits.length).toBeGreaterThanOrEqual(10)
      waits.forEach((wait, i) => {
        const poll = polls[i % polls.length]
        const expected = poll === undefined ? 45 : Math.min(240, Math.max(45, poll / 60))
        expectWithin([wait], expected - 5, expected + 5)
      })
    })))

  it.effect("HTTP 500/503 double the interval up to 4 h; success resets it; other failures do not double", () =>
    withTrigger(Effect.gen(function*() {
      const script: ReadonlyArray<Effect.Effect<unknown, unknown>> = [
        httpError(503), // -> 90
        httpError(500), // -> 180
        httpError(503), // -> 240 (cap)
        httpError(503), // -> 240
        noUpdate(), // -> 45
        httpError(500), // -> 90
        httpError(502), // -> 45: only 500 and 503 back off
        noUpdate(7200), // -> 120
        httpError(503), // -> 240: doubles the server's interval
        httpError(404), // -> 45
        Effect.fail("not an HTTP error"), // -> 45
        noUpdate() // -> 45
      ]
      const expected = [90, 180, 240, 240, 45, 90, 45, 120, 240, 45, 45, 45]
      const loop = yield* periodic((n) => script[n] ?? noUpdate())
      yield* TestClock.adjust(Duration.minutes(12 + expected.reduce((a, b) => a + b + 5, 0)))
      const waits = gaps(yield* loop.taken).slice(0, expected.length)
      expect(waits.length).toBe(expected.length)
      waits.forEach((wait, i) => expectWithin([wait], expected[i]! - 5, expected[i]! + 5))
    })))

  it.effect("the trigger runs a check at once; requests while one waits count once; the schedule goes on", () =>
    withTrigger(Effect.gen(function*() {
      const loop = yield* periodic(() => noUpdate())
      yield* Effect.yieldNow()
      loop.trigger.unsafeRequest()
      loop.trigger.unsafeRequest()
      yield* loop.trigger.request
      const first = yield* loop.next
      expect(first).toEqual({ at: 0, source: "ondemandupdate" })
      // The duplicate requests were dropped; the next check is the scheduled one, 40..50 min later.
      yield* TestClock.adjust("50 minutes")
      const runs = yield* loop.taken
      expect(runs.map((run) => run.source)).toEqual(["scheduler"])
      expectWithin([runs[0]!.at / minute], 40, 50)
    })))

  it.effect("a trigger during a check is satisfied by that check", () =>
    withTrigger(Effect.gen(function*() {
      const trigger = yield* UpdateSchedule.Trigger
      const started = yield* Queue.unbounded<void>()
      const finish = yield* Queue.unbounded<void>()
      const runs: Array<UpdateSchedule.CheckSource> = []
      const check = (source: UpdateSchedule.CheckSource) =>
        Effect.gen(function*() {
          runs.push(source)
          yield* Queue.offer(started, undefined)
          yield* Queue.take(finish)
          return yield* noUpdate()
        })
      yield* Effect.fork(UpdateSchedule.runPeriodic(check))
      yield* TestClock.adjust("12 minutes")
      yield* Queue.take(started)
      trigger.unsafeRequest()
      yield* Queue.offer(finish, undefined)
      yield* TestClock.adjust("39 minutes")
      expect(runs).toEqual(["scheduler"])
    })))

  it.effect("never dies: failed and dying checks are logged and the schedule goes on", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const logger = Logger.make(({ cause, logLevel, message }) => {
        lines.push(`${logLevel.label} ${String(Array.isArray(message) ? message[0] : message)} ${cause._tag}`)
      })
      const script = [Effect.fail("server unhappy"), Effect.die("bug in the check"), noUpdate()]
      const waits = yield* withTrigger(Effect.gen(function*() {
        const loop = yield* periodic((n) => script[n] ?? noUpdate())
        yield* TestClock.adjust("3 hours")
        return gaps(yield* loop.taken)
      })).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      expect(waits.length).toBeGreaterThanOrEqual(3)
      expect(lines).toEqual([
        "WARN update check (scheduler) failed Fail",
        "WARN update check (scheduler) failed Die"
      ])
    }))

  it.effect("layerPeriodic runs the loop for the layer's lifetime", () =>
    Effect.gen(function*() {
      let runs = 0
      const scope = yield* Scope.make()
      yield* Layer.buildWithScope(
        UpdateSchedule.layerPeriodic(() => Effect.sync(() => runs++)).pipe(Layer.provide(UpdateSchedule.Trigger.Default)),
        scope
      )
      yield* TestClock.adjust("12 minutes")
      expect(runs).toBe(1)
      yield* TestClock.adjust("50 minutes")
      expect(runs).toBe(2)
      yield* Scope.close(scope, Exit.void)
      yield* TestClock.adjust("10 hours")
      expect(runs).toBe(2)
    }))

  it.effect("the schedule works with Effect.schedule too: its first input is undefined", () =>
    Effect.gen(function*() {
      const times: Array<number> = []
      const check = Effect.map(Clock.currentTimeMillis, (now) => {
        times.push(now)
        return UpdateSchedule.Outcome.Checked({ pollInterval: Option.some(Duration.hours(3)) })
      })
      yield* Effect.fork(Effect.schedule(check, UpdateSchedule.schedule()))
      yield* TestClock.adjust("10 hours")
      // 2..12 min, then three waits of 175..185 min fit in 10 hours, and a fourth does not.
      expect(times.length).toBe(4)
      expectWithin([times[0]! / minute], 2, 12)
      expectWithin(gaps(times.map((at) => ({ at, source: "scheduler" as const }))), 175, 185)
    }))
})

/**
 * When to check for updates, as update_engine does it: the first check 7
 * minutes after start, then every 45 minutes, each wait fuzzed by ±5 minutes
 * so that a fleet does not check in lockstep; a `PollInterval` from the
 * server replaces the interval (clamped to 45 min .. 4 h); HTTP 500 and 503
 * double the interval up to 4 h until a check succeeds. Checks also run on
 * demand through `Trigger` (a command wires SIGUSR1 to it), and
 * `runPeriodic` runs a check on this schedule for as long as it lives,
 * logging failed checks and going on.
 */
import { Cause, Data, Duration, Effect, Exit, Layer, Option, Queue, Random, Schedule } from "effect"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleInterval from "effect/ScheduleInterval"
import * as AppClient from "./AppClient.js"
import { HttpStatusError } from "./OmahaClient.js"

/**
 * A duration drawn uniformly from [d - fuzz/2, d + fuzz/2] (via `Random`),
 * never negative, in whole milliseconds.
 */
export const fuzzyDuration = (
  duration: Duration.DurationInput,
  fuzz: Duration.DurationInput
): Effect.Effect<Duration.Duration> => {
  const center = Duration.toMillis(duration)
  const half = Duration.toMillis(fuzz) / 2
  return Effect.map(
    Random.nextRange(center - half, center + half),
    (millis) => Duration.millis(Math.max(0, Math.round(millis)))
  )
}

/** What the schedule learns from one check. */
export type Outcome = Data.TaggedEnum<{
  /** The server answered; with the poll interval it asked for, if any. */
  Checked: { readonly pollInterval: Option.Option<Duration.Duration> }
  /** The check failed; with the HTTP status when the server answered one. */
  Failed: { readonly httpStatus: Option.Option<number> }
}>

/** Constructors and matchers for {@link Outcome}. */
export const Outcome = Data.taggedEnum<Outcome>()

/** The timings of the check schedule. */
export interface Timings {
  /** Wait before the first check (default 7 min). */
  readonly firstDelay: Duration.DurationInput
  /** Wait between checks, and the shortest poll interval taken from a server (default 45 min). */
  readonly interval: Duration.DurationInput
  /** Width of the fuzz around each wait (default 10 min: ±5). */
  readonly fuzz: Duration.DurationInput
  /** Longest wait: the cap of poll intervals and of the 500/503 backoff (default 4 h). */
  readonly maxInterval: Duration.DurationInput
}

/** update_engine's timings. */
export const defaultTimings: Timings = {
  firstDelay: Duration.minutes(7),
  interval: Duration.minutes(45),
  fuzz: Duration.minutes(10),
  maxInterval: Duration.hours(4)
}

/**
 * The check schedule. Its input is the outcome of the check just made, or
 * `undefined` before the first one (as `Effect.schedule` feeds it); its
 * output is the wait it chose. The wait is the current interval, fuzzed:
 * - before the first check, `firstDelay`;
 * - after a check that got an answer, the server's poll interval clamped to
 *   [interval, maxInterval], or `interval` when it sent none;
 * - after HTTP 500 or 503, twice the previous interval, at most `maxInterval`;
 * - after any other failure, `interval`.
 */
export const schedule = (
  timings: Partial<Timings> = {}
): Schedule.Schedule<Duration.Duration, Outcome | undefined> => {
  const t = { ...defaultTimings, ...timings }
  const interval = Duration.toMillis(t.interval)
  const maxInterval = Duration.toMillis(t.maxInterval)
  const clamp = (millis: number) => Math.min(maxInterval, Math.max(interval, millis))
  // The state is the last interval chosen (before fuzz), which 500/503 double.
  return Schedule.makeWithState<number, Outcome | undefined, Duration.Duration>(interval, (now, input, last) => {
    const next = input === undefined
      ? { base: Duration.toMillis(t.firstDelay), last }
      : Outcome.$match(input, {
        Checked: ({ pollInterval }) => {
          const base = Option.match(pollInterval, { onNone: () => interval, onSome: (d) => clamp(Duration.toMillis(d)) })
          return { base, last: base }
        },
        Failed: ({ httpStatus }) => {
          const base = Option.exists(httpStatus, (status) => status === 500 || status === 503)
            ? Math.min(maxInterval, 2 * last)
            : interval
          return { base, last: base }
        }
      })
    return Effect.map(fuzzyDuration(Duration.millis(next.base), t.fuzz), (delay) =>
      [
        next.last,
        delay,
        ScheduleDecision.continueWith(ScheduleInterval.after(now + Duration.toMillis(delay)))
      ] as const)
  })
}

/**
 * The outcome of a check from how it ended: a `CheckResult` success passes on
 * its poll interval; an `HttpStatusError` failure its status.
 */
export const outcomeOf = (exit: Exit.Exit<unknown, unknown>): Outcome =>
  Exit.match(exit, {
    onSuccess: (value) =>
      Outcome.Checked({
        pollInterval: value instanceof AppClient.UpdateAvailable || value instanceof AppClient.NoUpdate
          ? AppClient.pollInterval(value)
          : Option.none()
      }),
    onFailure: (cause) =>
      Outcome.Failed({
        httpStatus: Option.flatMap(Cause.failureOption(cause), (error) =>
          error instanceof HttpStatusError ? Option.some(error.status) : Option.none())
      })
  })

/** Why a check runs: update_engine's `installsource` values. */
export type CheckSource = "scheduler" | "ondemandupdate"

/**
 * Asks for an immediate check. Requests made while one is already waiting
 * count once; `unsafeRequest` is synchronous, for signal handlers
 * (`process.on("SIGUSR1", trigger.unsafeRequest)`).
 */
export class Trigger extends Effect.Service<Trigger>()("effect-omaha/client/UpdateSchedule/Trigger", {
  effect: Effect.map(Queue.dropping<void>(1), (queue) => ({
    /** Asks for a check now. */
    request: Effect.asVoid(Queue.offer(queue, undefined)),
    /** Asks for a check now, from outside Effect. */
    unsafeRequest: (): void => {
      queue.unsafeOffer(undefined)
    },
    /** Waits for a request. */
    next: Queue.take(queue),
    /** Forgets a waiting request (a check just ran). */
    clear: Effect.asVoid(Queue.takeAll(queue))
  }))
}) {}

/** How `runPeriodic` runs. */
export interface PeriodicOptions {
  /** The schedule; default `schedule()`, update_engine's. */
  readonly schedule?: Schedule.Schedule<Duration.Duration, Outcome | undefined>
  /** How a check's end becomes the schedule's input; default {@link outcomeOf}. */
  readonly outcome?: (exit: Exit.Exit<unknown, unknown>) => Outcome
}

/**
 * Runs `check` on the schedule, and at once whenever `Trigger` is asked,
 * forever. A check that fails or dies is logged and the next one is
 * scheduled as the outcome says; only interruption stops the loop. Return
 * the `CheckResult` from `check` so that a server's poll interval counts.
 */
export const runPeriodic = <A, E, R>(
  check: (source: CheckSource) => Effect.Effect<A, E, R>,
  options: PeriodicOptions = {}
): Effect.Effect<never, never, R | Trigger> =>
  Effect.gen(function*() {
    const trigger = yield* Trigger
    const driver = yield* Schedule.driver(options.schedule ?? schedule())
    const outcome = options.outcome ?? outcomeOf
    let input: Outcome | undefined = undefined
    while (true) {
      // A schedule that has ended leaves only on-demand checks.
      const scheduled = Effect.matchEffect(driver.next(input), {
        onFailure: () => Effect.never,
        onSuccess: () => Effect.succeed<CheckSource>("scheduler")
      })
      const source = yield* Effect.race(scheduled, Effect.as(trigger.next, "ondemandupdate" as const))
      const exit = yield* Effect.exit(check(source))
      if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
        yield* Effect.logWarning(`update check (${source}) failed`, exit.cause)
      }
      yield* trigger.clear
      input = outcome(exit)
    }
  })

/** {@link runPeriodic} as a layer: the loop runs in the background for the layer's lifetime. */
export const layerPeriodic = <A, E, R>(
  check: (source: CheckSource) => Effect.Effect<A, E, R>,
  options: PeriodicOptions = {}
): Layer.Layer<never, never, R | Trigger> => Layer.scopedDiscard(Effect.forkScoped(runPeriodic(check, options)))

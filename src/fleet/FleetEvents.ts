/**
 * What happens in a fleet's rollouts, told to whoever listens (the metrics,
 * the webhooks): an update granted, completed or failed, a rollout started
 * or finished, a group paused by the failure brake. The rollout engine
 * publishes an event once what it tells is committed; publishing never
 * waits for a listener and never fails, so an update check is never held up
 * by the people it is told to.
 */
import { Context, Data, Effect, Layer } from "effect"

/** An event of a rollout. `group` is the group's name; times are epoch ms. */
export type FleetEvent = Data.TaggedEnum<{
  /** A machine was granted an update (stored before its answer left). */
  Granted: { readonly appId: string; readonly group: string; readonly machineId: string; readonly version: string; readonly at: number }
  /** A machine reported its update complete (3/2). */
  Completed: { readonly appId: string; readonly group: string; readonly machineId: string; readonly version: string; readonly at: number }
  /** A machine's update failed (an event with result 0); `errorCode` is update_engine's, flag bits masked off. */
  Failed: {
    readonly appId: string
    readonly group: string
    readonly machineId: string
    readonly version: string
    readonly errorCode: number | undefined
    readonly rollback: boolean
    readonly at: number
  }
  /** The first grant of a rollout (a group's first grant of its channel's target or floors). */
  RolloutStarted: { readonly appId: string; readonly group: string; readonly version: string; readonly at: number }
  /** Every machine of the group that checks in is on the rollout's target. */
  RolloutFinished: { readonly appId: string; readonly group: string; readonly version: string; readonly at: number }
  /** The failure brake paused the group; `reason` says why. */
  RolloutBraked: { readonly appId: string; readonly group: string; readonly version: string; readonly reason: string; readonly at: number }
}>

/** Constructors and matchers of {@link FleetEvent}. */
export const FleetEvent = Data.taggedEnum<FleetEvent>()

/** Who hears the events: called in the publisher's fiber, so it must return at once (count, or queue). */
export type Listener = (event: FleetEvent) => Effect.Effect<void>

/** The service the rollout engine publishes to. */
export interface FleetEventsService {
  /** Tells every listener; never fails, never waits for a listener's work. */
  readonly publish: (event: FleetEvent) => Effect.Effect<void>
}

/** The service the rollout engine publishes to. */
export class FleetEvents extends Context.Tag("effect-omaha/fleet/FleetEvents")<FleetEvents, FleetEventsService>() {}

/** A service telling `listeners` in turn; a listener that fails or dies is logged and the rest are still told. */
export const make = (listeners: ReadonlyArray<Listener>): FleetEventsService => ({
  publish: (event) =>
    Effect.forEach(
      listeners,
      (listener) => Effect.catchAllCause(listener(event), (cause) => Effect.logWarning(`a ${event._tag} event listener failed`, cause)),
      { discard: true }
    )
})

/** Events told to nobody (serve-package, tests of the engine alone). */
export const layerNone: Layer.Layer<FleetEvents> = Layer.succeed(FleetEvents, make([]))

/** Events told to `listeners`. */
export const layer = (listeners: ReadonlyArray<Listener>): Layer.Layer<FleetEvents> => Layer.succeed(FleetEvents, make(listeners))

import { SqlClient } from "@effect/sql"
import { expect } from "@effect/vitest"
import { Context, Duration, Effect, Layer } from "effect"
import * as FleetEvents from "../../src/fleet/FleetEvents.js"
import * as FleetUpdater from "../../src/fleet/FleetUpdater.js"
import * as Tracking from "../../src/fleet/Tracking.js"
import * as Updater from "../../src/server/Updater.js"
import { describeStores, truncateAll } from "./support.js"
import { check, eventApp, flatcar, machineApp, seed } from "./updaterSupport.js"

// A replica whose rollout engine tells `told` of what happens.
const replicaTelling = (told: Array<FleetEvents.FleetEvent>) =>
  Effect.map(
    Layer.build(
      Layer.scoped(Updater.Updater, FleetUpdater.make({ pollInterval: Duration.days(1) })).pipe(
        Layer.provideMerge(Tracking.layer({ flushInterval: Duration.days(1) })),
        Layer.provide(FleetEvents.layer([(event) => Effect.sync(() => told.push(event))]))
      )
    ),
    (context) => Context.get(context, Updater.Updater)
  )

const summary = (events: ReadonlyArray<FleetEvents.FleetEvent>) =>
  events.map((e) => [e._tag, e.group, e.version, "machineId" in e ? e.machineId : "", e._tag === "Failed" ? e.errorCode : ""].join(" ").trim())

describeStores("FleetEvents from the rollout engine", (it) => {
  it.scoped("tell the rollout's start once, each grant and completion, and its finish once every machine is on the target", () =>
    Effect.gen(function*() {
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      yield* seed(sql)
      const told: Array<FleetEvents.FleetEvent> = []
      const updater = yield* replicaTelling(told)
      for (const m of ["m1", "m2"]) expect((yield* check(updater, machineApp(m, "1.0.0")))?._tag).toBe("Update")
      yield* check(updater, eventApp("m1", "3815.2.1", 3, 2))
      // m2 is still on 1.0.0: not finished.
      expect(told.map((e) => e._tag)).not.toContain("RolloutFinished")
      yield* check(updater, eventApp("m2", "3815.2.1", 3, 2))
      // A later completion (one that was already complete) tells nothing more.
      yield* check(updater, eventApp("m2", "3815.2.1", 3, 2))
      expect(summary(told)).toEqual([
        "RolloutStarted Stable 3815.2.1",
        "Granted Stable 3815.2.1 m1",
        "Granted Stable 3815.2.1 m2",
        "Completed Stable 3815.2.1 m1",
        "Completed Stable 3815.2.1 m2",
        "RolloutFinished Stable 3815.2.1"
      ])
      expect(told.every((e) => e.appId === flatcar)).toBe(true)
      const finished = yield* sql<{ message: string }>`SELECT message FROM activity WHERE kind = 'rolloutFinished'`
      expect(finished).toEqual([{ message: "Stable: rollout of 3815.2.1 finished" }])
    }))

  it.scoped("tell a failure with its error code, and the failure brake's pause", () =>
    Effect.gen(function*() {
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      yield* seed(sql, { policy: { failure_brake: JSON.stringify({ ratio: 0.4, minAttempts: 2 }) } })
      const told: Array<FleetEvents.FleetEvent> = []
      const updater = yield* replicaTelling(told)
      for (const m of ["m1", "m2", "m3"]) yield* check(updater, machineApp(m, "1.0.0"))
      yield* check(updater, eventApp("m1", "3815.2.1", 3, 2))
      yield* check(updater, eventApp("m2", "1.0.0", 3, 0, 0x80000000 | 44))
      expect(summary(told.slice(4))).toEqual([
        "Completed Stable 3815.2.1 m1",
        "Failed Stable 3815.2.1 m2 44",
        "RolloutBraked Stable 3815.2.1"
      ])
      const failed = told.find((e) => e._tag === "Failed")
      expect(failed).toMatchObject({ rollback: true })
      const braked = told.find((e) => e._tag === "RolloutBraked")
      expect(braked).toMatchObject({ reason: expect.stringMatching(/^failure brake: 1 of 2 finished updates failed/) })
    }))
})

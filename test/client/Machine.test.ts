import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Machine } from "effect-omaha"

/** Temp files holding `machineId` and `bootId` (undefined: no file), and their paths. */
const files = (machineId: string | undefined, bootId: string | undefined) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped()
    const paths: Machine.Paths = { machineId: `${dir}/machine-id`, bootId: `${dir}/boot_id` }
    if (machineId !== undefined) yield* fs.writeFileString(paths.machineId, machineId)
    if (bootId !== undefined) yield* fs.writeFileString(paths.bootId, bootId)
    return paths
  })

const goodMachineId = "4c4d9083d61b41c3253212c0c37a1b2e\n"
const goodBootId = "7d52a1cc-7066-40f0-91c7-7cb6a871bfde\n"

describe("Machine", () => {
  it.scoped("reads the machine id as the user id and the boot id, in braces, as the session id", () =>
    Effect.gen(function*() {
      const paths = yield* files(goodMachineId, goodBootId)
      expect(yield* Machine.readIdentity(paths)).toEqual({
        userId: "4c4d9083d61b41c3253212c0c37a1b2e",
        sessionId: "{7d52a1cc-7066-40f0-91c7-7cb6a871bfde}"
      })
      // Hand-made files in upper case read the same as systemd's.
      const upper = yield* files(goodMachineId.toUpperCase(), goodBootId.toUpperCase())
      expect(yield* Machine.readIdentity(upper)).toEqual(yield* Machine.readIdentity(paths))
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("a missing file is IdFileMissing, naming the id and the path", () =>
    Effect.gen(function*() {
      const noMachineId = yield* files(undefined, goodBootId)
      const error = yield* Effect.flip(Machine.readIdentity(noMachineId))
      expect(error).toEqual(new Machine.IdFileMissing({ kind: "machine id", path: noMachineId.machineId }))
      expect(error.message).toBe(`cannot read the machine id: ${noMachineId.machineId} does not exist`)
      const noBootId = yield* files(goodMachineId, undefined)
      expect(yield* Effect.flip(Machine.readIdentity(noBootId))).toEqual(
        new Machine.IdFileMissing({ kind: "boot id", path: noBootId.bootId })
      )
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("malformed content is IdFileMalformed: empty, short, not hex, systemd's 'uninitialized'", () =>
    Effect.gen(function*() {
      for (const content of ["", "\n", "4c4d9083d61b41c3253212c0c37a1b2", "4c4d9083-d61b-41c3-2532-12c0c37a1b2e", "uninitialized\n"]) {
        const paths = yield* files(content, goodBootId)
        const error = yield* Effect.flip(Machine.readIdentity(paths))
        expect(error, JSON.stringify(content)).toMatchObject({
          _tag: "IdFileMalformed",
          kind: "machine id",
          path: paths.machineId,
          content: content.trim()
        })
      }
      const badBoot = yield* files(goodMachineId, "not-a-uuid")
      const error = yield* Effect.flip(Machine.readIdentity(badBoot))
      expect(error.message).toBe(
        `malformed boot id in ${badBoot.bootId}: expected a UUID (8-4-4-4-12 hexadecimal digits), found "not-a-uuid"`
      )
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("a path that cannot be read as a file is IdFileUnreadable", () =>
    Effect.gen(function*() {
      const paths = yield* files(goodMachineId, goodBootId)
      const directory = paths.machineId.replace(/machine-id$/, "")
      const error = yield* Effect.flip(Machine.readIdentity({ ...paths, machineId: directory }))
      expect(error).toMatchObject({ _tag: "IdFileUnreadable", kind: "machine id", path: directory })
    }).pipe(Effect.provide(NodeContext.layer)))
})

import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { Package, Request, Response, TrivialUpdater, Updater, Version } from "effect-omaha"

const facts = new Package.PackageFacts({
  size: 67546213,
  sha1: "+LXvjiaPkeYDLHoNKlf9qbJwvnk=",
  sha256: "0VAlQW3RE99SGtSB5R4m08antAHO8XDoBMKDyxQT/Mg="
})
const payload = { name: "update.gz", version: Option.getOrThrow(Version.parseSemverOption("3815.2.1")), facts }

const answer = (version: string | undefined) =>
  Effect.gen(function*() {
    const updater = yield* Updater.Updater
    const app = new Request.AppRequest({ appId: "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}", ...(version === undefined ? {} : { version }) })
    return yield* updater.checkUpdate(Request.make({ apps: [app] }), app, { address: "127.0.0.1" })
  }).pipe(Effect.provide(TrivialUpdater.layer(payload)))

describe("TrivialUpdater", () => {
  it.effect("offers the payload to older versions only, semver or dotted", () =>
    Effect.gen(function*() {
      for (const older of ["3815.2.0", "3815.1.9", "2512.0.0", "3815.2.1-rc.1", "3815.2", "1.0.0.0", "3815.2.0.9"]) {
        expect((yield* answer(older))._tag, older).toBe("Update")
      }
      for (const same of ["3815.2.1", "3815.2.1.0", "3815.2.1+build7"]) {
        expect((yield* answer(same))._tag, same).toBe("NoUpdate")
      }
      for (const newer of ["3815.2.2", "3816.0.0", "9999.0.0", "3815.2.1.1"]) {
        expect((yield* answer(newer))._tag, newer).toBe("NoUpdate")
      }
    }))

  it.effect("treats ForcedUpdate as older than everything", () =>
    Effect.gen(function*() {
      expect((yield* answer("ForcedUpdate"))._tag).toBe("Update")
    }))

  it.effect("answers noupdate, never an error, for versions it cannot read", () =>
    Effect.gen(function*() {
      for (const version of [undefined, "", "latest", "1.x", "forcedupdate"]) {
        const result = yield* answer(version)
        expect(result._tag, String(version)).toBe("NoUpdate")
      }
    }))

  it.effect("offers the package with both hashes, size, required, and update_engine's postinstall action", () =>
    Effect.gen(function*() {
      const result = yield* answer("1.0.0")
      if (result._tag !== "Update") throw new Error("expected an update")
      expect(result.codebases).toEqual(["packages/"])
      expect(result.manifests).toStrictEqual([
        new Response.Manifest({
          version: "3815.2.1",
          packages: [
            new Response.Package({
              name: "update.gz",
              hash: facts.sha1,
              hashSha256: facts.sha256,
              size: facts.size,
              required: true
            })
          ],
          actions: [new Response.Action({ event: "postinstall", sha256: facts.sha256, disablePayloadBackoff: true })]
        })
      ])
    }))
})

/**
 * The simplest useful backend: one payload, offered to every app whose
 * version is lower than the payload's. Clients that send `ForcedUpdate`
 * (Chrome OS's way of asking for any update) count as lower than everything.
 * A version we cannot read gets `noupdate` and a warning, never an error
 * status: update_engine turns any error status into its error 34.
 */
import { Effect, Layer, Option } from "effect"
import { PackageFacts, toPackage } from "../protocol/Package.js"
import * as Response from "../protocol/Response.js"
import * as Version from "../protocol/Version.js"
import { metadataContentType } from "../updater/Signature.js"
import { NoUpdate, Update, Updater } from "./Updater.js"

/** The payload a trivial server offers. */
export interface Payload {
  /** The name the package is served under (`/packages/<name>`). */
  readonly name: string
  /** The payload's version; clients with a lower version are offered it. */
  readonly version: Version.Version
  readonly facts: PackageFacts
  /** A release signature for the payload (see the self-updater's `Signature`), sent as package metadata. */
  readonly signature?: string
}

/** The version string with which a client asks for an update whatever its version. */
export const forcedUpdate = "ForcedUpdate"

/** The manifest for a payload: its package and update_engine's `postinstall` action. */
export const manifestFor = (payload: Payload): Response.Manifest =>
  new Response.Manifest({
    version: payload.version.text,
    packages: [
      payload.signature === undefined
        ? toPackage(payload.facts, payload.name)
        : new Response.Package({
          ...toPackage(payload.facts, payload.name),
          metadata: new Response.Metadata({ contentType: metadataContentType, content: payload.signature })
        })
    ],
    actions: [
      new Response.Action({ event: "postinstall", sha256: payload.facts.sha256, disablePayloadBackoff: true })
    ]
  })

/** Codebase of the payloads, relative to the server's public address. */
export const codebase = "packages/"

/** The `Updater` for one payload (see the module header). */
export const layer = (payload: Payload): Layer.Layer<Updater> => {
  const update = Effect.succeed(new Update({ codebases: [codebase], manifests: [manifestFor(payload)] }))
  // A fleet runs a few versions at a time: the answer for each is worked out once.
  const answers = new Map<string, Effect.Effect<Update | NoUpdate>>()
  const answerFor = (version: string) =>
    Option.match(Version.parseOption(version), {
      onNone: () => undefined,
      onSome: (current) =>
        Version.lessThan(current, payload.version)
          ? update
          : Effect.succeed(new NoUpdate({ reason: `${version} is not older than ${payload.version.text}` }))
    })
  return Layer.succeed(Updater, {
    checkApp: () => Effect.void,
    checkUpdate: (_, app) => {
      const version = app.version ?? ""
      if (version === forcedUpdate) return update
      let answer = answers.get(version)
      if (answer === undefined) {
        answer = answerFor(version)
        if (answer === undefined) {
          return Effect.as(
            Effect.logWarning(`app ${app.appId} sent version ${JSON.stringify(version)}, which is not a version`),
            new NoUpdate({ reason: `unreadable version ${JSON.stringify(version)}` })
          )
        }
        if (answers.size >= 256) answers.clear()
        answers.set(version, answer)
      }
      return answer
    },
    event: () => Effect.void,
    ping: () => Effect.void
  })
}

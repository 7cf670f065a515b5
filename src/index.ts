/**
 * effect-omaha: the Omaha v3 update protocol, server, client and binary
 * self-updater on Effect. Each module is exported as a namespace.
 */
export * as Apply from "./updater/Apply.js"
export * as Codes from "./protocol/Codes.js"
export * as Compression from "./updater/Compression.js"
export * as Download from "./updater/Download.js"
export * as ExitCode from "./client/ExitCode.js"
export * as Lock from "./updater/Lock.js"
export * as Package from "./protocol/Package.js"
export * as Platform from "./protocol/Platform.js"
export * as Progress from "./updater/Progress.js"
export * as Publish from "./updater/Publish.js"
export * as Release from "./updater/Release.js"
export * as Repository from "./updater/Repository.js"
export * as Request from "./protocol/Request.js"
export * as Response from "./protocol/Response.js"
export * as Signature from "./updater/Signature.js"
export * as Version from "./protocol/Version.js"
export * as Xml from "./protocol/Xml.js"

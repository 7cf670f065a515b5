/**
 * effect-omaha: the Omaha v3 update protocol, server, client and binary
 * self-updater on Effect. Each module is exported as a namespace.
 */
export * as Codes from "./protocol/Codes.js"
export * as ExitCode from "./client/ExitCode.js"
export * as Package from "./protocol/Package.js"
export * as Platform from "./protocol/Platform.js"
export * as Request from "./protocol/Request.js"
export * as Response from "./protocol/Response.js"
export * as Version from "./protocol/Version.js"
export * as Xml from "./protocol/Xml.js"
export * as OmahaHandler from "./server/OmahaHandler.js"
export * as OmahaServer from "./server/OmahaServer.js"
export * as PackageFiles from "./server/PackageFiles.js"
export * as TrivialUpdater from "./server/TrivialUpdater.js"
export * as Updater from "./server/Updater.js"
export * as AppClient from "./client/AppClient.js"
export * as Machine from "./client/Machine.js"
export * as OmahaClient from "./client/OmahaClient.js"
export * as UpdateSchedule from "./client/UpdateSchedule.js"

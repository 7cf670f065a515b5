/**
 * The Omaha v3 code tables: event types and results (numbers on the wire) and
 * the app and update-check statuses (strings on the wire), each with the name
 * to print in logs.
 */
import { Schema } from "effect"

/** Event types and results and their log names (plain data, shared with the fleet dashboard). */
export { EventResult, eventResultName, EventType, eventTypeName } from "./internal/codeTables.js"

const appErrorStatuses = [
  "restricted",
  "error-unknownApplication",
  "error-invalidAppId",
  "error-invalidVersion",
  "error-internal"
] as const

/** The app statuses other than `ok`: what a server answers for an app it will not serve. */
export const AppErrorStatus = Schema.Literal(...appErrorStatuses)

/** `app@status` in a response. */
export const AppStatus = Schema.Literal("ok", ...appErrorStatuses)

/** One of the app statuses. */
export type AppStatus = typeof AppStatus.Type

const updateErrorStatuses = [
  "error-osnotsupported",
  "error-unsupportedProtocol",
  "error-pluginRestrictedHost",
  "error-hash",
  "error-internal",
  "error-hwnotsupported"
] as const

/** The update-check statuses that report an error (all but `noupdate` and `ok`). */
export const UpdateErrorStatus = Schema.Literal(...updateErrorStatuses)

/** `updatecheck@status` in a response. */
export const UpdateStatus = Schema.Literal("noupdate", "ok", ...updateErrorStatuses)

/** One of the update-check statuses. */
export type UpdateStatus = typeof UpdateStatus.Type

const statusDescriptions: Record<AppStatus | UpdateStatus, string> = {
  "ok": "ok",
  "restricted": "restricted by export control",
  "noupdate": "no update",
  "error-unknownApplication": "unknown application",
  "error-invalidAppId": "invalid app id",
  "error-invalidVersion": "invalid version",
  "error-internal": "server error",
  "error-osnotsupported": "OS not supported",
  "error-unsupportedProtocol": "unsupported protocol",
  "error-pluginRestrictedHost": "restricted host",
  "error-hash": "hash error",
  "error-hwnotsupported": "hardware not supported"
}

/** A short human description of an app or update-check status, for logs. */
export const describeStatus = (status: AppStatus | UpdateStatus): string => statusDescriptions[status]

/** True for the statuses that report an error (`error-*`). */
export const isErrorStatus = (status: AppStatus | UpdateStatus): boolean => status.startsWith("error-")

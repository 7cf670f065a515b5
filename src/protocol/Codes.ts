/**
 * The Omaha v3 code tables: event types and results (numbers on the wire) and
 * the app and update-check statuses (strings on the wire), each with the name
 * to print in logs.
 */
import { Schema } from "effect"

const nameOf = (table: Readonly<Record<number, string>>, code: number): string =>
  table[code] ?? `unknown (${code})`

/** Event types (`eventtype`), by the names used in code. */
export const EventType = {
  Unknown: 0,
  DownloadComplete: 1,
  InstallComplete: 2,
  UpdateComplete: 3,
  Uninstall: 4,
  DownloadStarted: 5,
  InstallStarted: 6,
  NewApplicationInstallStarted: 9,
  SetupStarted: 10,
  SetupFinished: 11,
  UpdateApplicationStarted: 12,
  UpdateDownloadStarted: 13,
  UpdateDownloadFinished: 14,
  UpdateInstallerStarted: 15,
  SetupUpdateBegin: 16,
  SetupUpdateComplete: 17,
  RegisterProductComplete: 20,
  OemInstallFirstCheck: 30,
  AppSpecificCommandStarted: 40,
  AppSpecificCommandEnded: 41,
  UpdateCheckFailure: 50,
  SetupFailure: 100,
  ComServerFailure: 102,
  SetupUpdateFailure: 103
} as const

/** One of the event type codes of {@link EventType}. */
export type EventType = (typeof EventType)[keyof typeof EventType]

const eventTypeNames: Record<number, string> = {
  0: "unknown",
  1: "download complete",
  2: "install complete",
  3: "update complete",
  4: "uninstall",
  5: "download started",
  6: "install started",
  9: "new application install started",
  10: "setup started",
  11: "setup finished",
  12: "update application started",
  13: "update download started",
  14: "update download finished",
  15: "update installer started",
  16: "setup update begin",
  17: "setup update complete",
  20: "register product complete",
  30: "OEM install first check",
  40: "app-specific command started",
  41: "app-specific command ended",
  50: "update-check failure",
  100: "setup failure",
  102: "COM server failure",
  103: "setup update failure"
}

/** The log name of an event type; codes outside the table read `unknown (N)`. */
export const eventTypeName = (code: number): string => nameOf(eventTypeNames, code)

/** Event results (`eventresult`), by the names used in code. */
export const EventResult = {
  Error: 0,
  Success: 1,
  SuccessReboot: 2,
  SuccessRestartBrowser: 3,
  Cancelled: 4,
  ErrorInstallerMsi: 5,
  ErrorInstallerOther: 6,
  NoUpdate: 7,
  ErrorInstallerSystem: 8,
  UpdateDeferred: 9,
  HandoffError: 10
} as const

/** One of the event result codes of {@link EventResult}. */
export type EventResult = (typeof EventResult)[keyof typeof EventResult]

const eventResultNames: Record<number, string> = {
  0: "error",
  1: "success",
  2: "success, reboot",
  3: "success, restart browser",
  4: "cancelled",
  5: "error, installer MSI",
  6: "error, installer other",
  7: "noupdate",
  8: "error, installer system",
  9: "update deferred",
  10: "handoff error"
}

/** The log name of an event result; codes outside the table read `unknown (N)`. */
export const eventResultName = (code: number): string => nameOf(eventResultNames, code)

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

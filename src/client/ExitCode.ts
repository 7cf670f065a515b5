/**
 * update_engine's exit codes: what a client reports in `event@errorcode`
 * when an update fails, with the flag bits it ORs into them, the names to
 * print, and the error event that carries a code to the server.
 */
import { EventResult, EventType, eventResultName, eventTypeName } from "../protocol/Codes.js"
import { EventRequest } from "../protocol/Request.js"

/** The exit codes, by name. */
export const Code = {
  Success: 0,
  Error: 1,
  OmahaRequestError: 2,
  OmahaResponseHandlerError: 3,
  FilesystemCopierError: 4,
  PostinstallRunnerError: 5,
  SetBootableFlagError: 6,
  InstallDeviceOpenError: 7,
  KernelDeviceOpenError: 8,
  DownloadTransferError: 9,
  PayloadHashMismatchError: 10,
  PayloadSizeMismatchError: 11,
  DownloadPayloadVerificationError: 12,
  DownloadNewPartitionInfoError: 13,
  DownloadWriteError: 14,
  NewRootfsVerificationError: 15,
  NewKernelVerificationError: 16,
  SignedDeltaPayloadExpectedError: 17,
  DownloadPayloadPubKeyVerificationError: 18,
  PostinstallBootedFromFirmwareB: 19,
  DownloadStateInitializationError: 20,
  DownloadInvalidMetadataMagicString: 21,
  DownloadSignatureMissingInManifest: 22,
  DownloadManifestParseError: 23,
  DownloadMetadataSignatureError: 24,
  DownloadMetadataSignatureVerificationError: 25,
  DownloadMetadataSignatureMismatch: 26,
  DownloadOperationHashVerificationError: 27,
  DownloadOperationExecutionError: 28,
  DownloadOperationHashMismatch: 29,
  OmahaRequestEmptyResponseError: 30,
  OmahaRequestXMLParseError: 31,
  DownloadInvalidMetadataSize: 32,
  DownloadInvalidMetadataSignature: 33,
  OmahaResponseInvalid: 34,
  OmahaUpdateIgnoredPerPolicy: 35,
  OmahaUpdateDeferredPerPolicy: 36,
  OmahaErrorInHTTPResponse: 37,
  DownloadOperationHashMissingError: 38,
  DownloadMetadataSignatureMissingError: 39,
  OmahaUpdateDeferredForBackoff: 40,
  PostinstallPowerwashError: 41,
  NewPCRPolicyVerificationError: 42,
  NewPCRPolicyHTTPError: 43,
  RollbackError: 44,
  DownloadIncomplete: 100,
  /** HTTP failures are reported as this base plus the HTTP status (2404 for a 404). */
  OmahaRequestHTTPResponseBase: 2000
} as const

/** The name of an exit code in {@link Code}. */
export type CodeName = keyof typeof Code

const names = new Map<number, CodeName>(
  (Object.entries(Code) as Array<[CodeName, number]>).map(([name, code]) => [code, name])
)

/** The flag bits update_engine ORs into a code, by name. */
export const Flag = {
  DevMode: 2 ** 31,
  Resumed: 2 ** 30,
  TestImage: 2 ** 29,
  TestOmahaUrl: 2 ** 28
} as const

/** The name of a flag bit. */
export type FlagName = keyof typeof Flag

/** The bits that hold the code itself once the flags are masked off. */
export const codeMask = 0x0fffffff

/** A raw `errorcode` split into its code and its flags. */
export interface Decoded {
  readonly code: number
  readonly flags: ReadonlyArray<FlagName>
}

/**
 * Splits a raw `errorcode` into code and flags. Clients print the value as a
 * signed 32-bit integer, so one with DevMode set arrives negative; both
 * spellings decode alike.
 */
export const decode = (raw: number): Decoded => {
  const bits = raw >>> 0
  const flags = (Object.keys(Flag) as Array<FlagName>).filter((name) => (bits & Flag[name]) >>> 0 !== 0)
  return { code: bits & codeMask, flags }
}

/** A code with flag bits set, as the unsigned value update_engine sends. */
export const withFlags = (code: number, flags: ReadonlyArray<FlagName>): number =>
  flags.reduce((bits, flag) => (bits | Flag[flag]) >>> 0, code >>> 0)

/** The code reported for an HTTP response with a non-2xx status. */
export const ofHttpStatus = (status: number): number => Code.OmahaRequestHTTPResponseBase + status

/** The name of a code without flags: `PayloadHashMismatchError`, `OmahaRequestHTTPResponseBase+404`. */
export const name = (code: number): string => {
  const known = names.get(code)
  if (known !== undefined) return known
  if (code > Code.OmahaRequestHTTPResponseBase && code < Code.OmahaRequestHTTPResponseBase + 1000) {
    return `OmahaRequestHTTPResponseBase+${code - Code.OmahaRequestHTTPResponseBase}`
  }
  return "UnknownError"
}

/** A raw `errorcode` for logs: `PayloadHashMismatchError (10) [TestOmahaUrl]`. */
export const describe = (raw: number): string => {
  const { code, flags } = decode(raw)
  return `${name(code)} (${code})${flags.length === 0 ? "" : ` [${flags.join(", ")}]`}`
}

/** True for the codes update_engine reports as deferred (`eventresult=9`) rather than as errors. */
export const isDeferral = (code: number): boolean =>
  code === Code.OmahaUpdateIgnoredPerPolicy ||
  code === Code.OmahaUpdateDeferredPerPolicy ||
  code === Code.OmahaUpdateDeferredForBackoff

/** The event that reports a failed update: `eventtype=3 eventresult=0 errorcode=N` (or result 9 for deferrals). */
export const errorEvent = (raw: number, versions: { readonly previousVersion?: string; readonly nextVersion?: string } = {}) =>
  new EventRequest({
    eventType: EventType.UpdateComplete,
    eventResult: isDeferral(decode(raw).code) ? EventResult.UpdateDeferred : EventResult.Error,
    errorCode: raw,
    ...versions
  })

/** An event for logs: `update complete: error, PayloadHashMismatchError (10) [TestOmahaUrl]`. */
export const describeEvent = (event: EventRequest): string => {
  const result = event.eventResult === undefined ? "" : `: ${eventResultName(event.eventResult)}`
  const error = event.errorCode === undefined ? "" : `, ${describe(event.errorCode)}`
  return `${eventTypeName(event.eventType)}${result}${error}`
}

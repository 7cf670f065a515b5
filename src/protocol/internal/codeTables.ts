/**
 * The code tables as plain data with no imports: Omaha's event types and
 * results, and update_engine's exit codes (`event@errorcode`) with their
 * flag bits, names and what each means in words. Plain, so that a browser
 * bundle (the fleet dashboard) can use them without Effect or Node;
 * `protocol/Codes.ts` and `client/ExitCode.ts` export them to the library.
 */

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

/** update_engine's exit codes, by name. */
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

/** What each exit code means, in words an operator reads. */
export const meanings: Readonly<Record<CodeName, string>> = {
  Success: "the update succeeded",
  Error: "the update failed, with no more specific reason",
  OmahaRequestError: "the update check could not be sent or got no answer (network error)",
  OmahaResponseHandlerError: "the server's answer could not be acted on (a field is missing or wrong)",
  FilesystemCopierError: "copying the file system to the other partition failed",
  PostinstallRunnerError: "the post-install step failed",
  SetBootableFlagError: "the new partition could not be marked bootable",
  InstallDeviceOpenError: "the partition to install to could not be opened",
  KernelDeviceOpenError: "the kernel partition could not be opened",
  DownloadTransferError: "the payload download failed or was cut off",
  PayloadHashMismatchError: "the downloaded payload's hash is not the one the server announced",
  PayloadSizeMismatchError: "the downloaded payload's size is not the one the server announced",
  DownloadPayloadVerificationError: "the payload's signature could not be verified",
  DownloadNewPartitionInfoError: "the payload does not describe the new partitions",
  DownloadWriteError: "writing the payload to disk failed",
  NewRootfsVerificationError: "the new root file system failed verification",
  NewKernelVerificationError: "the new kernel failed verification",
  SignedDeltaPayloadExpectedError: "a delta payload was expected to be signed and was not",
  DownloadPayloadPubKeyVerificationError: "the payload is not signed by the update key",
  PostinstallBootedFromFirmwareB: "post-install refused: the machine booted from firmware B",
  DownloadStateInitializationError: "the download could not be started",
  DownloadInvalidMetadataMagicString: "the downloaded file is not an update payload (wrong magic string)",
  DownloadSignatureMissingInManifest: "the payload's manifest carries no signature",
  DownloadManifestParseError: "the payload's manifest could not be parsed",
  DownloadMetadataSignatureError: "the payload's metadata signature is malformed",
  DownloadMetadataSignatureVerificationError: "the payload's metadata signature could not be verified",
  DownloadMetadataSignatureMismatch: "the payload's metadata signature does not match",
  DownloadOperationHashVerificationError: "an install operation's hash could not be verified",
  DownloadOperationExecutionError: "an install operation failed",
  DownloadOperationHashMismatch: "an install operation's data does not match its hash",
  OmahaRequestEmptyResponseError: "the server sent an empty answer",
  OmahaRequestXMLParseError: "the server's answer is not well-formed XML",
  DownloadInvalidMetadataSize: "the payload's metadata size is wrong",
  DownloadInvalidMetadataSignature: "the payload's metadata signature is invalid",
  OmahaResponseInvalid: "the server's answer is not a usable update (any error status counts as this)",
  OmahaUpdateIgnoredPerPolicy: "the machine's own policy ignored the update",
  OmahaUpdateDeferredPerPolicy: "the machine's own policy deferred the update",
  OmahaErrorInHTTPResponse: "the server answered with an HTTP error",
  DownloadOperationHashMissingError: "an install operation carries no hash",
  DownloadMetadataSignatureMissingError: "the payload's metadata signature is missing",
  OmahaUpdateDeferredForBackoff: "the machine deferred the update: it is backing off after failed downloads",
  PostinstallPowerwashError: "the powerwash after install failed",
  NewPCRPolicyVerificationError: "the new TPM PCR policy failed verification",
  NewPCRPolicyHTTPError: "the new TPM PCR policy could not be fetched",
  RollbackError: "the machine rolled back to its previous version",
  DownloadIncomplete: "the download did not finish",
  OmahaRequestHTTPResponseBase: "the server answered with an HTTP error status"
}

/** The flag bits update_engine ORs into a code, by name. */
export const Flag = {
  DevMode: 2 ** 31,
  Resumed: 2 ** 30,
  TestImage: 2 ** 29,
  TestOmahaUrl: 2 ** 28
} as const

/** The name of a flag bit. */
export type FlagName = keyof typeof Flag

/** What each flag bit says about the machine, in words. */
export const flagMeanings: Readonly<Record<FlagName, string>> = {
  DevMode: "in developer mode",
  Resumed: "resuming an interrupted update",
  TestImage: "running a test image",
  TestOmahaUrl: "using a non-production update server"
}

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

const httpStatusOf = (code: number): number | undefined =>
  code > Code.OmahaRequestHTTPResponseBase && code < Code.OmahaRequestHTTPResponseBase + 1000
    ? code - Code.OmahaRequestHTTPResponseBase
    : undefined

/** The name of a code without flags: `PayloadHashMismatchError`, `OmahaRequestHTTPResponseBase+404`. */
export const name = (code: number): string => {
  const known = names.get(code)
  if (known !== undefined) return known
  const status = httpStatusOf(code)
  return status === undefined ? "UnknownError" : `OmahaRequestHTTPResponseBase+${status}`
}

/** A raw `errorcode` for logs: `PayloadHashMismatchError (10) [TestOmahaUrl]`. */
export const describe = (raw: number): string => {
  const { code, flags } = decode(raw)
  return `${name(code)} (${code})${flags.length === 0 ? "" : ` [${flags.join(", ")}]`}`
}

/**
 * A raw `errorcode` in words: "the downloaded payload's hash is not the one
 * the server announced; the machine was using a non-production update
 * server".
 */
export const explain = (raw: number): string => {
  const { code, flags } = decode(raw)
  const known = names.get(code)
  const status = httpStatusOf(code)
  const words = known !== undefined
    ? meanings[known]
    : status !== undefined
    ? `the server answered HTTP ${status}`
    : "a code update_engine does not define"
  return flags.length === 0 ? words : `${words}; the machine was ${flags.map((flag) => flagMeanings[flag]).join(", ")}`
}

/** True for the codes update_engine reports as deferred (`eventresult=9`) rather than as errors. */
export const isDeferral = (code: number): boolean =>
  code === Code.OmahaUpdateIgnoredPerPolicy ||
  code === Code.OmahaUpdateDeferredPerPolicy ||
  code === Code.OmahaUpdateDeferredForBackoff

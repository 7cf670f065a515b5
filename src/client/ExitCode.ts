/**
 * update_engine's exit codes: what a client reports in `event@errorcode`
 * when an update fails, with the flag bits it ORs into them, the names to
 * print, and the error event that carries a code to the server.
 */
import { EventResult, EventType, eventResultName, eventTypeName } from "../protocol/Codes.js"
import { decode, describe, isDeferral } from "../protocol/internal/codeTables.js"
import { EventRequest } from "../protocol/Request.js"

/** The exit codes, their names and flag bits, and what each means in words (plain data, shared with the fleet dashboard). */
export {
  Code,
  type CodeName,
  codeMask,
  type Decoded,
  decode,
  describe,
  explain,
  Flag,
  flagMeanings,
  type FlagName,
  isDeferral,
  meanings,
  name,
  ofHttpStatus,
  withFlags
} from "../protocol/internal/codeTables.js"

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
